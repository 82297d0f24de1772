"""What an image kind may be to another image target. Each target class declares its `roles`;
every list of the kinds a field accepts derives from them (`kinds.allowed`), so a new kind
joins a list by declaring the role, never by editing the lists (`allowed`)."""

from __future__ import annotations

from collections.abc import Sequence

#: Named by a field that takes any packaged image (`rootfs_image`).
IMAGE = "image"
#: A nix_oci_image's `base_image` (its layers under the new ones).
BASE = "base"
#: A nydus_image's `source_image` (converted to Nydus).
NYDUS_SOURCE = "nydus-source"
#: An entry of an oci_image_index's `images` (an index among them is flattened).
INDEX_ENTRY = "index-entry"

#: The image target classes, in the order messages and help list them: `kinds.py` registers
#: them when it is loaded (the backend's `register.py` loads it first).
_KINDS: list[type] = []


def register_kinds(kinds: Sequence[type]) -> None:
    _KINDS[:] = kinds


def allowed(role: str) -> tuple[str, ...]:
    """The aliases of the kinds that declare ``role``."""
    if not _KINDS:
        raise RuntimeError("layerforge_pants.kinds is not loaded: the image kinds are registered there")
    return tuple(kind.alias for kind in _KINDS if role in getattr(kind, "roles", ()))
