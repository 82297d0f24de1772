"""An OCI layout as one tar file (``oci-archive``, as skopeo, podman, buildah, ``ctr images
import`` and kraft read it): ``oci-layout``, ``index.json`` and the blobs ``index.json``
reaches, in that order, the blobs sorted by digest. Every member has the same owner (0:0),
mode (0644, directories 0755) and mtime (SOURCE_DATE_EPOCH), so the same layout gives the
same archive bit for bit. Each blob is checked against its digest while it is copied."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from layerforge.errors import LayoutError, UsageError
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.layout.unreferenced import reachable_blobs
from layerforge.model.digest import digest_hex

_CHUNK = 1 << 20


@dataclass(frozen=True)
class OciArchiveResult:
    path: Path
    blobs: int
    size: int


class _Hashing:
    """A reader that hashes what it hands out (tarfile copies ``size`` bytes from it)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        return data


def write_oci_archive(layout: OciLayout, out: Path, *, epoch: int) -> OciArchiveResult:
    """Write ``layout`` as an oci-archive at ``out`` (atomically: a scratch file renamed)."""
    _check_out_outside(layout, out)
    out_dir = out.parent if str(out.parent) else Path(".")
    if not out_dir.is_dir():
        raise UsageError("--out", f"directory '{out_dir}' does not exist")
    digests = sorted(reachable_blobs(layout))
    with scratch_dir(out_dir, "oci-archive") as tmp:
        path = tmp / "archive.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", (layout.root / "oci-layout").read_bytes(), epoch)
            _add_bytes(tar, "index.json", layout.index_path.read_bytes(), epoch)
            _add_dir(tar, "blobs/", epoch)
            _add_dir(tar, "blobs/sha256/", epoch)
            for digest in digests:
                _add_blob(tar, layout, digest, epoch)
        os.replace(path, out)
    return OciArchiveResult(path=out, blobs=len(digests), size=out.stat().st_size)


def _check_out_outside(layout: OciLayout, out: Path) -> None:
    root = layout.root.resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise UsageError("--out", f"'{out}' is inside the source layout '{layout.root}'")


def _info(name: str, size: int, epoch: int, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = epoch
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.size = size
    ti.mode = 0o755 if directory else 0o644
    ti.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return ti


def _add_dir(tar: tarfile.TarFile, name: str, epoch: int) -> None:
    tar.addfile(_info(name, 0, epoch, directory=True))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, epoch: int) -> None:
    tar.addfile(_info(name, len(data), epoch), io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, layout: OciLayout, digest: str, epoch: int) -> None:
    what = f"'{layout.root}': blob {digest}"
    layout.require_blob(digest, what)
    src = layout.blob_path(digest)
    try:
        f = open(src, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise LayoutError(f"{what} is missing (incomplete layout); rebuild or re-pull it") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        reader = _Hashing(f)
        tar.addfile(_info(f"blobs/sha256/{digest_hex(digest)}", size, epoch), reader)
    if f"sha256:{reader.hash.hexdigest()}" != digest:
        raise LayoutError(f"{what} does not match its digest (corrupt layout); rebuild the layout")
