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
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge import __version__
from layerforge.errors import LayerforgeError
from layerforge.layers.build import BuiltLayer
from layerforge.layout.atomic import atomic_write
from layerforge.layout.image_reader import import_blobs
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import sha256_digest, validate_digest
from layerforge.trust import cache_files
from layerforge.trust.blobs import read_document
from layerforge.trust.text import shown

log = logging.getLogger("layerforge.cache")

#: Bump when the bytes a given key produces change without a version change.
FORMAT_REVISION = 1
#: A record names its layer's store paths; a layer of thousands of paths stays far below this.
MAX_RECORD = 4 << 20
WHAT = "the layer cache"


@dataclass(frozen=True)
class LayerKey:
    """A store-path layer as the cache knows it: everything its bytes depend on (``layer``,
    which its record repeats) and the record's name (the sha256 of ``layer``, hex)."""

    layer: dict[str, Any]
    name: str


def layer_key(paths: Sequence[str], options: dict[str, Any]) -> LayerKey:
    doc = {"v": FORMAT_REVISION, "layerforge": __version__, "paths": sorted(paths), "options": options}
    return LayerKey(doc, sha256_digest(canonical_json(doc)).split(":")[1])


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class LayerCache:
    """Records (``layers/NAME.json``) and blobs (``store/``) under ``root``, used only under
    :mod:`layerforge.trust.cache_files`' rule: a record of another user, or one someone else
    could have written, is never read, and the cache writes nothing into a directory of theirs.
    A record is used only for the layer it names (its paths and options), and its blob enters a
    layout only after its bytes were checked against its digest and size."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.stats = CacheStats()
        self._store = OciLayout(root / "store") if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _record(self, key: LayerKey) -> Path:
        assert self.root is not None
        return self.root / "layers" / f"{key.name}.json"

    def fetch(self, key: LayerKey, layout: OciLayout) -> BuiltLayer | None:
        """The cached layer for ``key``, with its blob made present in ``layout``."""
        layer = self._cached(key, layout)
        if layer is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return layer

    def _cached(self, key: LayerKey, layout: OciLayout) -> BuiltLayer | None:
        if self.root is None or self._store is None:
            return None
        layer = self._recorded(self.root, key)
        if layer is None or layout.has_blob(layer.descriptor.digest):
            return layer
        blob = self._store.blob_path(layer.descriptor.digest)
        if not cache_files.usable(self.root, blob, WHAT):
            return None
        try:
            import_blobs(self._store, layout, [layer.descriptor])
        except LayerforgeError as e:  # not the blob its record names: rebuilt, and replaced
            log.warning("warning: ignoring %s: %s", WHAT, shown(e))
            blob.unlink(missing_ok=True)
            return None
        return layer

    def _recorded(self, root: Path, key: LayerKey) -> BuiltLayer | None:
        """The layer of ``key``'s record, if the record is usable and names that layer."""
        record = self._record(key)
        if not cache_files.usable(root, record, WHAT):
            return None
        try:
            rec = json.loads(read_document(record, f"layer cache record '{record}'", limit=MAX_RECORD))
            if canonical_json(rec["layer"]) != canonical_json(key.layer):
                return None  # a record of another layer, under this one's name
            return BuiltLayer(
                descriptor=Descriptor(
                    media_type=rec["mediaType"], digest=validate_digest(rec["digest"]), size=int(rec["size"])
                ),
                diff_id=validate_digest(rec["diffId"]),
                uncompressed_size=int(rec["uncompressedSize"]),
            )
        except (LayerforgeError, ValueError, TypeError, KeyError, RecursionError):
            return None

    def store(self, key: LayerKey, layer: BuiltLayer, layout: OciLayout) -> None:
        if self._store is None or self.root is None:
            return
        dirs = (self.root / "layers", self.root / "tmp", self._store.blob_dir, self._store.tmp_dir)
        if not all(cache_files.private_dir(self.root, d, WHAT) for d in dirs):
            return
        blob = self._store.blob_path(layer.descriptor.digest)
        if blob.exists() and not cache_files.usable(self.root, blob, WHAT):
            blob.unlink()  # not this user's alone: replaced by the blob just built
        import_blobs(layout, self._store, [layer.descriptor])
        cache_files.keep_private(blob)
        rec = {
            "layer": key.layer,
            "mediaType": layer.descriptor.media_type,
            "digest": layer.descriptor.digest,
            "size": layer.descriptor.size,
            "diffId": layer.diff_id,
            "uncompressedSize": layer.uncompressed_size,
        }
        atomic_write(self._record(key), canonical_json(rec), self.root / "tmp", mode=cache_files.FILE_MODE)
        self._store.remove_tmp_dir_if_empty()
