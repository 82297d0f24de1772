"""Hostile inputs for the trust-boundary tests: hand-made tars and OCI layouts (any member,
any JSON), and canary directories outside the output whose tree, modes, owners and inodes
are compared before and after a command."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANARY_UID = 4321
CANARY_GID = 4322


@dataclass(frozen=True)
class M:
    """One tar member: kind is dir, file, symlink, hardlink, fifo; ``target`` is a link's."""

    kind: str
    name: str
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def tar_bytes(members: list[M]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            ti = tarfile.TarInfo(m.name)
            ti.mode, ti.uid, ti.gid, ti.mtime = m.mode, m.uid, m.gid, 1
            data = None
            if m.kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif m.kind == "file":
                ti.type, ti.size, data = tarfile.REGTYPE, len(m.data), io.BytesIO(m.data)
            elif m.kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, m.target
            elif m.kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, m.target
            elif m.kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            else:
                raise AssertionError(m.kind)
            tar.addfile(ti, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layout:
    """An OCI layout written blob by blob, for tests that break one thing in it."""

    root: Path
    manifest: str = ""
    config: str = ""
    layers: list[str] = field(default_factory=list)

    def blob(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.split(":")[1]


def put(root: Path, data: bytes) -> str:
    d = sha(data)
    p = root / "blobs" / "sha256" / d.split(":")[1]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return d


def write_layout(
    root: Path,
    layers: list[bytes],
    *,
    ref: str = "latest",
    compress: bool = False,
    config: dict[str, Any] | None = None,
    manifest_extra: dict[str, Any] | None = None,
    raw_config: bytes | None = None,
    raw_manifest: bytes | None = None,
    index_entry_extra: dict[str, Any] | None = None,
) -> Layout:
    """A layout whose ``ref`` is one image of ``layers`` (tar bytes, gzip'd if ``compress``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    out = Layout(root)
    descs = []
    diff_ids = []
    for tar in layers:
        blob = gzip.compress(tar, mtime=0) if compress else tar
        d = put(root, blob)
        out.layers.append(d)
        diff_ids.append(sha(tar))
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descs.append({"mediaType": media, "digest": d, "size": len(blob)})
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg.update(config or {})
    cfg_bytes = raw_config if raw_config is not None else json.dumps(cfg).encode()
    out.config = put(root, cfg_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": out.config,
            "size": len(cfg_bytes),
        },
        "layers": descs,
    }
    manifest.update(manifest_extra or {})
    m_bytes = raw_manifest if raw_manifest is not None else json.dumps(manifest).encode()
    out.manifest = put(root, m_bytes)
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": out.manifest,
        "size": len(m_bytes),
        "annotations": {"org.opencontainers.image.ref.name": ref},
    }
    entry.update(index_entry_extra or {})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return out


def make_canary(root: Path) -> Path:
    """A directory outside any output: files and subdirectories with distinct modes and
    owners, which no command may change."""
    root.mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "sub" / "deep").mkdir()
    for rel, data, mode in [("keep.txt", b"canary\n", 0o640), ("sub/secret", b"s3cret\n", 0o600),
                            ("sub/deep/f", b"deep\n", 0o604)]:  # fmt: skip
        p = root / rel
        p.write_bytes(data)
        p.chmod(mode)
    for p in [root, root / "sub", root / "sub" / "deep"]:
        p.chmod(0o751)
    for p in [root, *root.rglob("*")]:
        os.lchown(p, CANARY_UID, CANARY_GID)
    return root


def tree_state(root: Path) -> dict[str, tuple[Any, ...]]:
    """Type, mode, owner, link count, size and content hash of everything under ``root``
    (itself included)."""
    out: dict[str, tuple[Any, ...]] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        content = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        out[str(p.relative_to(root))] = (
            stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink, st.st_size, content,
        )  # fmt: skip
    return out


def inodes(root: Path) -> set[tuple[int, int]]:
    return {(p.lstat().st_dev, p.lstat().st_ino) for p in [root, *root.rglob("*")]}


def shares_inode_with(tree: Path, canary: Path) -> list[str]:
    """Paths of ``tree`` that are the same file as something in ``canary`` (hard links out)."""
    if not tree.exists():
        return []
    outside = inodes(canary)
    return [str(p) for p in tree.rglob("*") if (p.lstat().st_dev, p.lstat().st_ino) in outside]
