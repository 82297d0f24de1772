"""The initial ramdisk of a unikernel: an existing file, or a reproducible newc cpio made
by the native core from a root filesystem (a directory or a tar), plus device nodes listed
in a ``gen_init_cpio``-style spec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError, UsageError
from layerforge.layers.build import build_archive
from layerforge.layout.image_reader import read_image
from layerforge.layout.scratch import scratch_dir
from layerforge.layout.unpack import unpack_layers, unpack_tar
from layerforge.model.reference import LayoutRef
from layerforge.option_flags import checked, choices
from layerforge.progress import ProgressCallback
from layerforge.trust.blobs import read_document, read_head

#: Compressions of a generated cpio (the kernel and Unikraft read both; Unikraft's own cpio
#: reader wants it plain, which is the default).
INITRD_COMPRESSIONS = choices("unikraft.initrd_compression")

# Leading bytes of what an existing initrd may be.
_MAGICS = (
    (0, b"070701", "newc cpio"),
    (0, b"070702", "newc cpio (crc)"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"BZh", "bzip2"),
    (0, b"\x02\x21\x4c\x18", "lz4"),
    (0, b"\x5d\x00\x00", "lzma"),
    (1024, b"\xe2\xe1\xf5\xe0", "EROFS"),
)


@dataclass(frozen=True)
class DeviceNode:
    path: str
    kind: str  # "char", "block" or "fifo"
    major: int = 0
    minor: int = 0
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class InitrdSource:
    """Exactly one of ``file`` (used as is), ``rootfs`` (a directory or tar to pack) or
    ``image`` (an OCI image whose merged root filesystem is packed)."""

    file: Path | None = None
    rootfs: Path | None = None
    image: LayoutRef | None = None
    compression: str = "none"
    nodes: tuple[DeviceNode, ...] = field(default_factory=tuple)
    keep_setuid: bool = False
    #: Owner of every packed entry (root unless asked); device nodes carry their own.
    uid: int = 0
    gid: int = 0


def identify_initrd(path: Path, option: str = "--initrd") -> str:
    """The format of an existing initrd, or a clear refusal."""
    if path.is_dir():
        raise UsageError(option, f"'{path}' is a directory; use --rootfs to pack a directory")
    try:
        head = read_head(path, 1028, f"'{path}'")
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None
    except OSError as e:
        raise UsageError(option, f"cannot read '{path}': {e.strerror}") from None
    for offset, magic, name in _MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return name
    raise UsageError(option, f"'{path}' is not a cpio archive, a compressed cpio or an EROFS image")


def parse_node_spec(path: Path, option: str = "--initrd-spec") -> tuple[DeviceNode, ...]:
    """``nod NAME MODE UID GID c|b MAJ MIN`` and ``pipe NAME MODE UID GID`` lines of a
    ``gen_init_cpio`` spec (blank lines and ``#`` comments skipped)."""
    try:
        lines = read_document(path, f"'{path}'", limit=16 << 20, follow=True).decode().splitlines()
    except (LayerforgeError, UnicodeDecodeError) as e:
        raise UsageError(option, f"cannot read '{path}': {e}") from None
    nodes = []
    for no, raw in enumerate(lines, 1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{path}:{no}"
        try:
            if words[0] == "nod" and len(words) == 8 and words[5] in ("c", "b"):
                _name, dest, mode, uid, gid, kind, major, minor = words
                node = DeviceNode(
                    dest, "char" if kind == "c" else "block", int(major), int(minor), int(mode, 8), int(uid), int(gid)
                )
            elif words[0] == "pipe" and len(words) == 5:
                _name, dest, mode, uid, gid = words
                node = DeviceNode(dest, "fifo", mode=int(mode, 8), uid=int(uid), gid=int(gid))
            else:
                raise ValueError
        except ValueError:
            raise UsageError(
                option,
                f"{where}: expected 'nod NAME MODE UID GID c|b MAJOR MINOR' or 'pipe NAME MODE UID GID',"
                f" got {raw.strip()!r}",
            ) from None
        if not node.path.startswith("/") or node.mode > 0o7777:
            raise UsageError(option, f"{where}: bad path or mode in {raw.strip()!r}")
        nodes.append(node)
    return tuple(nodes)


@contextmanager
def materialize_initrd(
    src: InitrdSource,
    scratch: Path,
    *,
    epoch: int,
    progress: ProgressCallback | None = None,
) -> Iterator[Path]:
    """Yield the path of the initrd file: ``src.file`` itself (which the package build checked
    with :func:`identify_initrd` before writing anything), or a cpio built in ``scratch``
    (removed afterwards)."""
    if src.file is not None:
        yield src.file
        return
    if src.rootfs is None and src.image is None:
        raise AssertionError("InitrdSource needs a file, a rootfs or an image")
    checked("--initrd-compression", "unikraft.initrd_compression", src.compression)
    scratch.mkdir(parents=True, exist_ok=True)
    with scratch_dir(scratch, "initrd") as work:
        yield build_cpio(src, work, epoch=epoch, progress=progress)


def build_cpio(src: InitrdSource, work: Path, *, epoch: int, progress: ProgressCallback | None = None) -> Path:
    """Pack ``src.rootfs`` (directory or tar) or ``src.image`` as a newc cpio under ``work``;
    its path."""
    if src.image is not None:
        image = read_image(src.image, platform=None)
        tree = work / "tree"
        unpack_layers(image.layout, list(image.manifest.layers), image.config.diff_ids, tree)
        return _pack(tree, src, work, epoch=epoch, progress=progress, option="--rootfs-image")
    if src.rootfs is None:
        raise AssertionError("InitrdSource without a source")
    rootfs = src.rootfs
    if not rootfs.exists():
        raise UsageError("--rootfs", f"'{rootfs}' does not exist")
    if rootfs.is_file():
        tree = work / "tree"
        unpack_tar(rootfs, tree, f"--rootfs '{rootfs}'")
        rootfs = tree
    elif not rootfs.is_dir():
        raise UsageError("--rootfs", f"'{rootfs}' is neither a directory nor a tar file")
    return _pack(rootfs, src, work, epoch=epoch, progress=progress, option="--rootfs")


def _pack(
    rootfs: Path, src: InitrdSource, work: Path, *, epoch: int, progress: ProgressCallback | None, option: str
) -> Path:
    spec = LayerSpec(mtime=epoch, uid=src.uid, gid=src.gid, keep_setuid=src.keep_setuid)
    spec.add_tree(rootfs, "/")
    for node in src.nodes:
        spec.add_node(node.path, node.kind, node.major, node.minor, node.mode)
        if (node.uid, node.gid) != (src.uid, src.gid):
            spec.add_perm_rule(re.escape(node.path), uid=node.uid, gid=node.gid)
    try:
        return build_archive(
            spec, work / "blobs", work / "tmp", format="cpio", compression=src.compression, progress=progress
        )
    except _native.InputError as e:
        raise UsageError(option, str(e)) from None
