"""Reusing built store-path layers across builds and images.

Store paths are immutable and named by the hash of their inputs, so a layer built from a
set of store paths with given options is the same forever. The cache maps a key (the
paths, every option that affects the bytes, and the layerforge version) to the built blob,
kept in the cache's own content-addressed blob store and hard-linked (or copied) into
layouts. A second image sharing dependencies, or a rebuild after one path changed,
rebuilds only the layers whose paths changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge import __version__
from layerforge.layers.build import BuiltLayer
from layerforge.layout.atomic import atomic_write
from layerforge.layout.image_reader import import_blobs
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import sha256_digest

#: Bump when the bytes a given key produces change without a version change.
FORMAT_REVISION = 1


def layer_key(paths: Sequence[str], options: dict[str, Any]) -> str:
    doc = {"v": FORMAT_REVISION, "layerforge": __version__, "paths": sorted(paths), "options": options}
    return sha256_digest(canonical_json(doc)).split(":")[1]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class LayerCache:
    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.stats = CacheStats()
        self._store = OciLayout(root / "store") if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _record(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "layers" / f"{key}.json"

    def fetch(self, key: str, layout: OciLayout) -> BuiltLayer | None:
        """The cached layer for ``key``, with its blob made present in ``layout``."""
        if self._store is None:
            return None
        try:
            rec = json.loads(self._record(key).read_bytes())
            layer = BuiltLayer(
                descriptor=Descriptor(media_type=rec["mediaType"], digest=rec["digest"], size=int(rec["size"])),
                diff_id=rec["diffId"],
                uncompressed_size=int(rec["uncompressedSize"]),
            )
        except (OSError, ValueError, KeyError):
            self.stats.misses += 1
            return None
        if not layout.has_blob(layer.descriptor.digest):
            if not self._store.has_blob(layer.descriptor.digest):
                self.stats.misses += 1
                return None
            import_blobs(self._store, layout, [layer.descriptor])
        self.stats.hits += 1
        return layer

    def store(self, key: str, layer: BuiltLayer, layout: OciLayout) -> None:
        if self._store is None or self.root is None:
            return
        self._store.blob_dir.mkdir(parents=True, exist_ok=True)
        import_blobs(layout, self._store, [layer.descriptor])
        rec = {
            "mediaType": layer.descriptor.media_type,
            "digest": layer.descriptor.digest,
            "size": layer.descriptor.size,
            "diffId": layer.diff_id,
            "uncompressedSize": layer.uncompressed_size,
        }
        atomic_write(self._record(key), canonical_json(rec), self.root / "tmp")
        self._store.remove_tmp_dir_if_empty()
