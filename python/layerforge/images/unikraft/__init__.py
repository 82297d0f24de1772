"""unikraft_image: unikernels packaged the way KraftKit's ``kraft pkg`` does (an image index
with one manifest per platform, uncompressed kernel and initrd layers, kconfig as
``os.features``), but reproducibly and for several platforms in one step."""
