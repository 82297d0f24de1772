"""The merged file tree of an image, for comparing: each path's type, size, mode, owner,
content digest (regular files) and link target, with every layer's whiteouts applied as
unpacking applies them (:mod:`layerforge.layout.whiteouts`)."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

from layerforge.layout.image_reader import StoredImage
from layerforge.layout.whiteouts import classify, is_under
from layerforge.trust.tars import check_complete, reading_tar

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    size: int
    mode: int
    uid: int
    gid: int
    digest: str | None  # sha256 of a regular file's (or hard link's) content
    link: str | None  # a symlink's or hard link's target

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.kind,
            "size": self.size,
            "mode": f"{self.mode:04o}",
            "uid": self.uid,
            "gid": self.gid,
            "digest": self.digest,
            "link": self.link,
        }


_KINDS = (
    ("dir", tarfile.TarInfo.isdir),
    ("symlink", tarfile.TarInfo.issym),
    ("hardlink", tarfile.TarInfo.islnk),
    ("char", tarfile.TarInfo.ischr),
    ("block", tarfile.TarInfo.isblk),
    ("fifo", tarfile.TarInfo.isfifo),
)


def _kind(m: tarfile.TarInfo) -> str:
    return next((name for name, test in _KINDS if test(m)), "file")


def image_tree(image: StoredImage, scratch: Path) -> dict[str, FileEntry]:
    """Every path of the image (``/etc/motd``) and its entry."""
    files: dict[str, FileEntry] = {}
    for i, (layer, diff_id) in enumerate(zip(image.manifest.layers, image.config.diff_ids), 1):
        what = f"'{image.layout.root}': layer {i} ({layer.digest})"
        tar_path = scratch / f"{i}.tar"
        image.layout.decompress(layer, tar_path, what, diff_id=diff_id)
        added: dict[str, FileEntry] = {}
        try:
            with reading_tar(tar_path, what) as tar:
                for m in tar:
                    change = classify(m.name, what)
                    if change.kind == "entry":
                        added["/" + change.path] = _entry(tar, m, added, files)
                    elif change.kind in ("opaque", "whiteout"):
                        opaque = change.kind == "opaque"
                        for p in [p for p in files if _hidden(p[1:], change.path, opaque)]:
                            del files[p]
                check_complete(tar, what)
        finally:
            tar_path.unlink(missing_ok=True)
        files.update(added)
    return files


def _hidden(path: str, top: str, opaque: bool) -> bool:
    if opaque:
        return path != top and is_under(path, top)
    return is_under(path, top)


def _entry(
    tar: tarfile.TarFile, m: tarfile.TarInfo, layer: dict[str, FileEntry], below: dict[str, FileEntry]
) -> FileEntry:
    kind = _kind(m)
    digest = None
    size = m.size if kind == "file" else 0
    link = m.linkname if kind in ("symlink", "hardlink") else None
    if kind == "file":
        f = tar.extractfile(m)
        h = hashlib.sha256()
        if f is not None:
            with f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        digest = f"sha256:{h.hexdigest()}"
    elif kind == "hardlink":
        target = "/" + classify(m.linkname).path
        linked = layer.get(target) or below.get(target)
        if linked is not None:
            digest, size = linked.digest, linked.size
    return FileEntry(kind=kind, size=size, mode=m.mode & 0o7777, uid=m.uid, gid=m.gid, digest=digest, link=link)
