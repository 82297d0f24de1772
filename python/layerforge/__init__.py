"""layerforge: reproducible, fast OCI images (Nix closures, unikernels, Nydus) with a Pants backend.

Package map:

* ``layerforge._native``: the Rust core (tar streams, digests, compression, blob store).
* ``layerforge.model``: the OCI image model (descriptors, configs, manifests, indexes, refs).
* ``layerforge.layout``: OCI image layouts on disk, image assembly, docker-archive export.
* ``layerforge.layers``: building layer blobs through the native core.
* ``layerforge.images``: one package per image kind (``dir`` so far).
* ``layerforge.cli``: the ``layerforge`` command line.
"""

from layerforge._native import __version__

__all__ = ["__version__"]
