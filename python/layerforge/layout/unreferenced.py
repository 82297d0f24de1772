"""Blobs a rebuild leaves behind: when a build replaces entries of a layout's index (a
re-packaged unikernel platform), the blobs only the replaced entries held are removed.
Only the candidates the build names are considered, and a candidate that any entry of
``index.json`` still reaches (through nested indexes and manifests) stays."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from layerforge.errors import LayerforgeError
from layerforge.layout.image_reader import MAX_INDEX_DEPTH
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor


def reachable_blobs(layout: OciLayout) -> set[str]:
    """Digests of every blob an entry of ``index.json`` reaches: nested indexes, manifests,
    their configs and layers (at most :data:`MAX_INDEX_DEPTH` indexes deep)."""
    seen: set[str] = set()

    def visit(desc: Descriptor, depth: int) -> None:
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if desc.media_type in media_types.INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                raise LayerforgeError(f"'{layout.root}': indexes nest more than {MAX_INDEX_DEPTH} deep")
            for child in layout.read_nested_index(desc).manifests:
                visit(child, depth + 1)
        elif desc.media_type in media_types.MANIFEST_TYPES:
            manifest = layout.read_manifest(desc)
            for blob in (manifest.config, *manifest.layers):
                seen.add(blob.digest)

    for entry in layout.read_index().manifests:
        visit(entry, 0)
    return seen


def remove_unreferenced(layout: OciLayout, candidates: Iterable[str]) -> list[str]:
    """Remove the blobs among ``candidates`` that no entry reaches any more; the digests
    removed. A layout whose graph cannot be read whole keeps every blob."""
    try:
        live = reachable_blobs(layout)
    except (LayerforgeError, OSError):
        return []
    removed = []
    for digest in dict.fromkeys(candidates):
        if digest in live:
            continue
        with contextlib.suppress(FileNotFoundError):
            layout.blob_path(digest).unlink()
            removed.append(digest)
    return removed
