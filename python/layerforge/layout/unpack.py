"""Applying image layers to a directory, as an overlay filesystem would stack them.

Whiteouts (``.wh.NAME``) delete from lower layers, opaque markers (``.wh..wh..opq``) empty a
directory; a member may never land outside the root (no ``..``, no absolute names, no
writing through a symlink left by a lower layer). Directory modes are applied last so that
read-only directories (every Nix store path) can still be filled. Ownership is kept when
running as root.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
from pathlib import Path

from layerforge import _native
from layerforge.errors import LayerforgeError
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.descriptor import Descriptor

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def unpack_layers(layout: OciLayout, layers: list[Descriptor], rootfs: Path) -> None:
    rootfs.mkdir(parents=True, exist_ok=True)
    dir_modes: dict[str, tarfile.TarInfo] = {}
    with tempfile.TemporaryDirectory(prefix="layerforge-unpack-") as tmp:
        for i, layer in enumerate(layers):
            tar_path = Path(tmp) / f"{i}.tar"
            r = _native.decompress_blob(layout.blob_path(layer.digest), tar_path)
            if r.digest != layer.digest:
                raise LayerforgeError(f"layer blob {layer.digest} does not match its digest")
            with tarfile.open(tar_path) as tar:
                _apply(tar, rootfs, dir_modes)
            tar_path.unlink()
    _apply_dir_modes(rootfs, dir_modes)


def unpack_tar(tar_path: Path, rootfs: Path) -> None:
    """Extract one tar (plain, gzip, bzip2 or xz) into ``rootfs`` with the same safety rules."""
    rootfs.mkdir(parents=True, exist_ok=True)
    dir_modes: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            _apply(tar, rootfs, dir_modes)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LayerforgeError(f"cannot read tar '{tar_path}': {e}") from None
    _apply_dir_modes(rootfs, dir_modes)


def _apply_dir_modes(rootfs: Path, dir_modes: dict[str, tarfile.TarInfo]) -> None:
    root = os.geteuid() == 0
    for name in sorted(dir_modes, key=lambda n: -n.count("/")):
        m = dir_modes[name]
        target = rootfs / name
        if target.is_dir() and not target.is_symlink():
            if root:
                os.lchown(target, m.uid, m.gid)
            os.chmod(target, m.mode & 0o7777)
            os.utime(target, (m.mtime, m.mtime))


def _clean_name(name: str) -> str:
    n = posixpath.normpath(name.lstrip("/"))
    if n.startswith("./"):
        n = n[2:]
    if n == ".." or n.startswith("../") or "/../" in f"/{n}/":
        raise LayerforgeError(f"layer member {name!r} escapes the root")
    return "" if n == "." else n


def _inside(rootfs: Path, rel: str) -> Path:
    """``rootfs/rel`` after checking that no existing parent is a symlink leading out."""
    target = rootfs / rel
    parent = os.path.realpath(target.parent)
    if parent != str(rootfs.resolve()) and not parent.startswith(str(rootfs.resolve()) + os.sep):
        raise LayerforgeError(f"layer member {rel!r} would be written outside the root through a symlink")
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for p in [path, *path.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def _apply(tar: tarfile.TarFile, rootfs: Path, dir_modes: dict[str, tarfile.TarInfo]) -> None:
    members = []
    for m in tar.getmembers():
        rel = _clean_name(m.name)
        if not rel:
            continue
        parent, base = posixpath.split(rel)
        if base == OPAQUE:
            d = _inside(rootfs, parent) if parent else rootfs
            if d.is_dir():
                for child in d.iterdir():
                    _remove(child)
            continue
        if base.startswith(WHITEOUT):
            _remove(_inside(rootfs, posixpath.join(parent, base[len(WHITEOUT) :])))
            dir_modes.pop(posixpath.join(parent, base[len(WHITEOUT) :]), None)
            continue
        members.append((rel, m))
    root = os.geteuid() == 0
    for rel, m in members:
        target = _inside(rootfs, rel)
        if m.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                target.unlink()
            target.mkdir(mode=0o755, exist_ok=True)
            dir_modes[rel] = m
            continue
        if target.is_symlink() or target.exists():
            _remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            os.link(_inside(rootfs, _clean_name(m.linkname)), target)
            continue
        elif m.isfile():
            src = tar.extractfile(m)
            assert src is not None
            with open(target, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            try:
                os.mknod(target, m.mode & 0o7777 | kind, os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                print(f"layerforge: skipping device node /{rel} (needs root)", file=sys.stderr)
                continue
        else:
            raise LayerforgeError(f"layer member {rel!r} has an unsupported type {m.type!r}")
        if root:
            os.lchown(target, m.uid, m.gid)
        if not m.issym():
            os.chmod(target, m.mode & 0o7777)
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
