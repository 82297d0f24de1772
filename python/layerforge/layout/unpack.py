"""Applying image layers to a directory, as an overlay filesystem would stack them.

Member names follow :mod:`layerforge.layout.whiteouts` (whiteouts, opaque markers, no name
outside the root). Every change goes through :class:`~layerforge.trust.rootfs.RootDir`: no
symlink a lower layer left is ever followed, whether writing a member, linking to a hard
link's target, removing what a whiteout names or applying a directory's mode at the end.
A whiteout whose directory is not a real directory (a symlink, a file) hides nothing, since
overlay would have nothing below it either. Directory modes are applied last so that
read-only directories (every Nix store path) can still be filled. Ownership is kept when
running as root.
"""

from __future__ import annotations

import os
import stat
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, LayoutError
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.layout.whiteouts import classify, clean_name, is_under
from layerforge.model.descriptor import Descriptor
from layerforge.trust.rootfs import RootDir
from layerforge.trust.tars import check_complete, reading_tar
from layerforge.trust.text import shown


@dataclass(frozen=True)
class _DirMeta:
    mode: int
    owner: tuple[int, int] | None
    mtime: float


class _Dirs:
    """Modes, owners and times of directories, applied once every layer is in."""

    def __init__(self) -> None:
        self.meta: dict[str, _DirMeta] = {}

    def record(self, rel: str, m: tarfile.TarInfo, owner: tuple[int, int] | None) -> None:
        self.meta[rel] = _DirMeta(m.mode, owner, m.mtime)

    def forget(self, top: str, *, keep_self: bool = False) -> None:
        for rel in [r for r in self.meta if is_under(r, top) and not (keep_self and r == top)]:
            del self.meta[rel]

    def apply(self, root: RootDir) -> None:
        for rel in sorted(self.meta, key=lambda n: -n.count("/")):
            m = self.meta[rel]
            root.set_dir_meta(rel, mode=m.mode, owner=m.owner, mtime=m.mtime)


def unpack_layers(layout: OciLayout, layers: list[Descriptor], diff_ids: Sequence[str], rootfs: Path) -> None:
    """Apply ``layers`` (each checked against its digest, size and the config's ``diff_ids``)
    to ``rootfs``. Scratch tars live next to ``rootfs`` in a pid-named directory swept if the
    process dies."""
    if len(diff_ids) != len(layers):
        raise LayoutError(f"'{layout.root}': the config lists {len(diff_ids)} diff_ids for {len(layers)} layers")
    parent = rootfs.parent if str(rootfs.parent) else Path(".")
    with RootDir(rootfs, create=True) as root, scratch_dir(parent, "unpack") as tmp:
        dirs = _Dirs()
        for i, (layer, diff_id) in enumerate(zip(layers, diff_ids), 1):
            what = f"layer {i} ({layer.digest})"
            tar_path = tmp / f"{i}.tar"
            layout.decompress(layer, tar_path, what, diff_id=diff_id)
            with reading_tar(tar_path, what) as tar:
                apply_tar(tar, root, dirs, what)
            tar_path.unlink()
        dirs.apply(root)


def unpack_tar(tar_path: Path, rootfs: Path, what: str | None = None) -> None:
    """Extract one tar (plain, gzip, bzip2 or xz) into ``rootfs`` with the same rules."""
    what = what or f"tar '{tar_path}'"
    with RootDir(rootfs, create=True) as root:
        dirs = _Dirs()
        with reading_tar(tar_path, what, "r:*", follow=True) as tar:
            apply_tar(tar, root, dirs, what)
        dirs.apply(root)


def apply_tar(tar: tarfile.TarFile, root: RootDir, dirs: _Dirs, what: str) -> None:
    """One layer: its whiteouts first (they apply to the layers below), then its members."""
    entries: list[tuple[str, tarfile.TarInfo]] = []
    members = tar.getmembers()
    check_complete(tar, what)
    for m in members:
        change = classify(m.name, what)
        if change.kind == "opaque":
            root.clear_dir(change.path)
            dirs.forget(change.path, keep_self=True)
        elif change.kind == "whiteout":
            root.remove(change.path)
            dirs.forget(change.path)
        elif change.kind == "entry":
            entries.append((change.path, m))
    owner_kept = os.geteuid() == 0
    for rel, m in entries:
        try:
            _apply_member(tar, root, dirs, rel, m, owner_kept=owner_kept, what=what)
        except LayerforgeError as e:
            raise LayerforgeError(f"{what}: member {shown(repr(m.name))}: {e}") from None


def _apply_member(
    tar: tarfile.TarFile, root: RootDir, dirs: _Dirs, rel: str, m: tarfile.TarInfo, *, owner_kept: bool, what: str
) -> None:
    owner = (m.uid, m.gid) if owner_kept else None
    if m.isdir():
        root.make_dir(rel)
        dirs.record(rel, m, owner)
        return
    dirs.forget(rel)  # whatever directory was here is gone, and its children with it
    if m.issym():
        root.symlink(rel, m.linkname, owner=owner, mtime=m.mtime)
    elif m.islnk():
        target = clean_name(m.linkname, what)
        if not target:
            raise LayerforgeError("a hard link to the root directory")
        root.hardlink(rel, target)  # a second name: the target's mode and owner stay
    elif m.isfile():
        src = tar.extractfile(m)
        if src is None:
            raise LayerforgeError("no data")
        with src:
            root.write_file(rel, src, mode=m.mode, owner=owner, mtime=m.mtime)
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        try:
            device = os.makedev(m.devmajor, m.devminor)
        except (OverflowError, ValueError):
            raise LayerforgeError(f"bad device numbers {m.devmajor}:{m.devminor}") from None
        try:
            root.mknod(rel, m.mode & 0o7777 | kind, device, owner=owner, mtime=m.mtime)
        except PermissionError:
            print(f"layerforge: skipping device node /{shown(rel)} (needs root)", file=sys.stderr)
    else:
        raise LayerforgeError(f"unsupported member type {m.type!r}")
