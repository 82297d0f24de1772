"""The Nydus oracle for tests: upstream ``nydus-image`` 2.2.0 (nydus-rs built from crates.io
with default features by scripts/test into a cache reused between runs, next to ``nydusd``:
see tests/nydusd_support.py) and erofs-utils, plus helpers to make source images and to read
what the oracle reports."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.platform import linux_platform
from tests.helpers import TEST_CACHE, blob_path, index_entry, read_json_blob, run, run_cli

NYDUS_RS = TEST_CACHE / "nydus-rs-2.2.0-full"
NYDUS_IMAGE = NYDUS_RS / "bin" / "nydus-image"

BLOB_TYPE = "application/vnd.oci.image.layer.nydus.blob.v1"


def nydus_image(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    assert NYDUS_IMAGE.is_file(), f"{NYDUS_IMAGE} is missing: run ./scripts/test, which builds it"
    return run(NYDUS_IMAGE, *args)


# -- source images ---------------------------------------------------------------------------


def tar_layer(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A PAX tar of (header, data) pairs, written in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def entry(name: str, kind: str = "file", *, mode: int | None = None, link: str = "", **kw: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "char": tarfile.CHRTYPE,
        "block": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.linkname = link
    info.mtime = kw.pop("mtime", 1_700_000_000)
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def make_image(
    layout_dir: Path, ref: str, layers: list[bytes], compression: str = "gzip", diff_ids: list[str] | None = None
) -> Path:
    """An OCI image in ``layout_dir`` tagged ``ref`` whose layers are the given tars (and whose
    config lists ``diff_ids``, when given, instead of the tars' digests)."""
    given = diff_ids
    layout = OciLayout.create(layout_dir)
    descs = []
    diff_ids = []
    for tar in layers:
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        if compression == "gzip":
            blob, mt = gzip.compress(tar, mtime=0), media_types.LAYER_TAR_GZIP
        elif compression == "zstd":
            blob = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
            mt = media_types.LAYER_TAR_ZSTD
        else:
            blob, mt = tar, media_types.LAYER_TAR
        d = layout.put_blob(blob, mt)
        descs.append(Descriptor(media_type=mt, digest=d.digest, size=d.size))
    config = ImageConfig(
        platform=linux_platform("amd64"),
        created="1970-01-01T00:00:01Z",
        diff_ids=tuple(diff_ids if given is None else given),
    )
    write_image(layout, config, descs, annotations={}, ref=ref)
    return layout_dir


MiB = 1 << 20


def convert(src: str, out: Path, *args: str) -> dict[str, object]:
    """`layerforge nydus-image SRC --out OUT --json ARGS`: what the command reports."""
    proc = run_cli("nydus-image", src, "--out", out, "--json", *args)
    return dict(json.loads(proc.stdout))


def rand(n: int, seed: int) -> bytes:
    """Incompressible bytes, the same on every run."""
    return random.Random(seed).randbytes(n)


def text(n: int, word: str) -> bytes:
    return (word.encode() * (n // len(word) + 1))[:n]


def layered_image(tmp_path: Path, compression: str = "gzip") -> Path:
    return make_image(tmp_path / f"src-{compression}", "v1", overlay_layers(), compression)


def overlay_layers() -> list[bytes]:
    shared = rand(3 * MiB + 123, 1)
    l1 = tar_layer(
        [
            (entry("etc", "dir"), None),
            (entry("etc/passwd", mode=0o644, uid=0, gid=0), b"root:x:0:0::/root:/bin/sh\n"),
            (entry("etc/old", mode=0o600), b"to be whited out"),
            (entry("etc/xattr", pax_headers={"SCHILY.xattr.user.color": "blue"}), b"has xattr"),
            (entry("opaque", "dir"), None),
            (entry("opaque/lower", mode=0o640, uid=1000, gid=1000), b"lower file"),
            (entry("data/shared.bin"), shared),
            (entry("data/link.bin", "hardlink", link="data/shared.bin"), None),
            (entry("data/text", mode=0o444), text(2 * MiB + 5, "nydus ")),
            (entry("data/dir-becomes-link", "dir"), None),
            (entry("data/dir-becomes-link/gone"), b"gone"),
            (entry("dev/null", "char", mode=0o666, devmajor=1, devminor=3), None),
            (entry("dev/sda", "block", mode=0o660, devmajor=8, devminor=0), None),
            (entry("run/fifo", "fifo"), None),
            (entry("bin/sh", mode=0o4755), b"#!shell"),
            (entry("bin/ls", "symlink", mode=0o777, link="sh"), None),
            (entry("empty"), b""),
        ]
    )
    l2 = tar_layer(
        [
            (entry("etc", "dir", mode=0o750), None),
            (entry("etc/.wh.old"), b""),
            (entry("opaque/.wh..wh..opq"), b""),
            (entry("opaque/upper"), b"upper file"),
            (entry("data/copy.bin"), shared),
            (entry("data/dir-becomes-link", "symlink", mode=0o777, link="../etc"), None),
            (entry("bin/sh", mode=0o755), b"#!other shell"),
            (entry("new/deep/file", mode=0o600), text(5000, "deep ")),
        ]
    )
    l3 = tar_layer([(entry("data/.wh.text"), b""), (entry("late"), rand(100_000, 2))])
    return [l1, l2, l3]


def family(tmp_path: Path, name: str, own: int) -> Path:
    """Images sharing a 12 MiB 'base' of files, plus ``own`` bytes of their own."""
    base = [(entry(f"usr/lib/lib{i}.so"), rand(MiB + 77 * i, 100 + i)) for i in range(12)]
    app = [(entry(f"app/{name}.bin"), rand(own, sum(name.encode())))]
    return make_image(tmp_path / name, "v1", [tar_layer(base), tar_layer(app)])


# -- reading Nydus images ---------------------------------------------------------------------


def nydus_manifest(layout: Path, ref: str) -> dict[str, Any]:
    entry_ = index_entry(layout, ref)
    m = read_json_blob(layout, entry_["digest"])
    if m.get("mediaType") == media_types.IMAGE_INDEX:
        (child,) = [c for c in m["manifests"] if "nydus.remoteimage.v1" in c.get("platform", {}).get("os.features", [])]
        m = read_json_blob(layout, child["digest"])
    return dict(m)


def bootstrap_bytes(layout: Path, manifest: dict[str, Any]) -> bytes:
    """``image/image.boot`` of the bootstrap layer, read with Python's gzip and tarfile."""
    boot = manifest["layers"][-1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob_path(layout, boot["digest"]).read_bytes()))) as tar:
        f = tar.extractfile("image/image.boot")
        assert f is not None
        return f.read()


def blob_dir(layout: Path, manifest: dict[str, Any], dest: Path) -> tuple[Path, list[str]]:
    """Hard-link an image's blobs into ``dest`` named by id (what nydus' localfs backend wants)."""
    dest.mkdir(parents=True, exist_ok=True)
    ids = []
    for layer in manifest["layers"][:-1]:
        assert layer["mediaType"] == BLOB_TYPE
        hexd = layer["digest"].split(":", 1)[1]
        if not (dest / hexd).exists():
            os.link(blob_path(layout, layer["digest"]), dest / hexd)
        ids.append(hexd)
    return dest, ids


@dataclass(frozen=True)
class ChunkPlace:
    blob_index: int
    index: int
    """The chunk's index in its blob's chunk table (its bit in a blob cache's chunk map)."""
    uncompressed_offset: int
    uncompressed_size: int
    compressed_offset: int
    compressed_size: int


@dataclass
class CheckedFile:
    kind: str
    nlink: int
    size: int
    link: str | None
    chunks: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    """(digest, blob index, compressed offset, compressed size, uncompressed size)"""
    places: list[ChunkPlace] = field(default_factory=list)
    """Where each chunk is in its blob's chunk table and uncompressed data."""


@dataclass
class CheckReport:
    files: dict[str, CheckedFile]
    blobs: list[tuple[str, int, int]]
    """(id, compressed data size, chunk count)"""


_INODE = re.compile(r'^inode: (\w*) "(.*)": .* i_nlink (\d+) i_size (\d+) .* link (None|Some\("(.*)"\)) i_mtime')
_CHUNK = re.compile(
    r"^\s+chunk: id ([0-9a-f]{64}), index (\d+), blob_index (\d+), file_offset \d+, "
    r"compressed (\d+)/(\d+), uncompressed (\d+)/(\d+)"
)
_BLOB = re.compile(r"^\s+\d+: ([^,]+), compressed data size (0x[0-9a-f]+), .*chunks: (0x[0-9a-f]+)")


def check(bootstrap: Path, blobs: Path | None = None) -> CheckReport:
    """``nydus-image check -v``: offline (-B, chunk table) or with the blobs as devices (-D)."""
    args: list[str | os.PathLike[str]] = ["check", "-v"]
    args += ["-D", blobs, bootstrap] if blobs is not None else ["-B", bootstrap]
    out = nydus_image(*args).stdout
    assert "RAFS filesystem metadata is valid" in out, out
    files: dict[str, CheckedFile] = {}
    current: CheckedFile | None = None
    blob_list = []
    for line in out.splitlines():
        if m := _INODE.match(line):
            current = CheckedFile(kind=m[1], nlink=int(m[3]), size=int(m[4]), link=m[6])
            files[m[2]] = current
        elif (m := _CHUNK.match(line)) and current is not None:
            current.chunks.append((m[1], int(m[3]), int(m[4]), int(m[5]), int(m[7])))
            current.places.append(ChunkPlace(int(m[3]), int(m[2]), int(m[6]), int(m[7]), int(m[4]), int(m[5])))
        elif m := _BLOB.match(line):
            blob_list.append((m[1], int(m[2], 16), int(m[3], 16)))
    return CheckReport(files=files, blobs=blob_list)


def erofs_devices(bootstrap: Path, report: CheckReport, work: Path) -> list[str]:
    """``--device=`` arguments for erofs-utils: sparse stand-ins of each blob's uncompressed size."""
    out = nydus_image("inspect", "-R", "blobs", bootstrap).stdout
    args = []
    for i, b in enumerate(json.loads(out.strip().splitlines()[-1])):
        dev = work / f"dev{i}"
        with open(dev, "wb") as f:
            f.truncate(int(b["decompressed_size"]))
        args.append(f"--device={dev}")
    assert len(args) == len(report.blobs)
    return args


def fsck_erofs(bootstrap: Path, report: CheckReport, work: Path) -> str:
    devices = erofs_devices(bootstrap, report, work)
    proc = subprocess.run(["fsck.erofs", *devices, str(bootstrap)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"fsck.erofs failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def dump_erofs_ls(bootstrap: Path, report: CheckReport, work: Path, path: str) -> dict[str, int]:
    """``dump.erofs --ls --path=PATH``: name -> file type of a directory's entries."""
    devices = erofs_devices(bootstrap, report, work)
    proc = subprocess.run(
        ["dump.erofs", *devices, "--ls", f"--path={path}", str(bootstrap)], capture_output=True, text=True, check=True
    )
    names: dict[str, int] = {}
    rows = proc.stdout.split("FILENAME", 1)[1].splitlines()
    for row in rows:
        parts = row.split(None, 2)
        if len(parts) == 3:
            names[parts[2]] = int(parts[1])
    return names


def unpack_blob(blob_dir_: Path, blob_id: str, out_tar: Path) -> Path:
    """``nydus-image unpack`` of a layer blob: the oracle extracts the inlined bootstrap itself."""
    nydus_image("unpack", "-D", blob_dir_, "--blob", blob_dir_ / blob_id, "--output", out_tar, blob_dir_ / blob_id)
    return out_tar


def extract_tar(tar_path: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "-xpf", str(tar_path), "-C", str(dest), "--numeric-owner", "--xattrs", "--xattrs-include=*"],
        check=True,
        capture_output=True,
    )
    return dest


def umoci_rootfs(layout: Path, ref: str, bundle: Path) -> Path:
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)], check=True, capture_output=True)
    return bundle / "rootfs"


def dump_erofs_inode(bootstrap: Path, report: CheckReport, work: Path, path: str) -> str:
    """``dump.erofs --path=PATH``: what erofs-utils say about one inode."""
    devices = erofs_devices(bootstrap, report, work)
    proc = subprocess.run(
        ["dump.erofs", *devices, f"--path={path}", str(bootstrap)], capture_output=True, text=True, check=True
    )
    return proc.stdout
