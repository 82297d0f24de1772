"""What an image kind may be to another image target. Each target class declares its `roles`;
every list of the kinds a field accepts derives from them (`kinds.allowed`), so a new kind
joins a list by declaring the role, never by editing the lists."""

from __future__ import annotations

#: Named by a field that takes any packaged image (`rootfs_image`).
IMAGE = "image"
#: A nix_oci_image's `base_image` (its layers under the new ones).
BASE = "base"
#: A nydus_image's `source_image` (converted to Nydus).
NYDUS_SOURCE = "nydus-source"
#: An entry of an oci_image_index's `images` (an index among them is flattened).
INDEX_ENTRY = "index-entry"
