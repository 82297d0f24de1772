"""One file's bytes from a base image's layers: the topmost layer that holds the path wins
(whether it still exists after whiteouts is :func:`list_files`' answer, asked first)."""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
from pathlib import Path

from layerforge import _native
from layerforge.images.nix.image_view import MAX_READ
from layerforge.layout.image_reader import StoredImage


def read_layer_file(image: StoredImage, path: str) -> bytes | None:
    """The contents of the regular file at absolute ``path`` in the topmost layer holding it,
    or None when that entry is not a regular file (or a hard link to one in the same layer)."""
    want = path.lstrip("/")
    with tempfile.TemporaryDirectory(prefix="layerforge-read-") as tmp:
        for i, layer in reversed(list(enumerate(image.manifest.layers))):
            tar_path = Path(tmp) / f"{i}.tar"
            image.layout.require_blob(layer.digest, f"'{image.layout.root}': layer {i + 1} ({layer.digest})")
            _native.decompress_blob(image.layout.blob_path(layer.digest), tar_path)
            with tarfile.open(tar_path) as tar:
                members = {_clean(m.name): m for m in tar.getmembers()}
                member = members.get(want)
                if member is None:
                    tar_path.unlink()
                    continue
                if member.islnk():
                    member = members.get(_clean(member.linkname))
                if member is None or not member.isfile() or member.size > MAX_READ:
                    return None
                f = tar.extractfile(member)
                return f.read() if f is not None else None
    return None


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")
