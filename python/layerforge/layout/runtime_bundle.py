"""OCI runtime bundles (``config.json`` + ``rootfs/``), the shape nixpkgs'
``ociTools.buildContainer`` produces: the image's layers unpacked into ``rootfs``, and a
runtime-spec configuration running the image's entrypoint and command with its environment,
the standard Linux system mounts plus the user's bind mounts, optionally a read-only root.

The bundle is assembled next to ``out`` and renamed into place, so ``out`` is either absent
or complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.atomic import atomic_write
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import new_scratch_dir
from layerforge.layout.unpack import unpack_layers
from layerforge.model.canonical_json import canonical_json
from layerforge.model.image_config import RuntimeConfig
from layerforge.model.manifest import Manifest
from layerforge.trust.json_shape import load_json
from layerforge.trust.rootfs import RootDir, remove_tree
from layerforge.trust.text import shown

OCI_VERSION = "1.0.2"

#: The Linux system mounts every bundle gets (as ociTools.buildContainer and runc's spec).
SYSTEM_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
)
NAMESPACES = ("pid", "network", "mount", "ipc", "uts")


@dataclass(frozen=True)
class BindMount:
    source: str
    destination: str
    options: tuple[str, ...] = ("rbind", "ro")

    def to_json(self) -> dict[str, Any]:
        return {"destination": self.destination, "type": "bind", "source": self.source, "options": list(self.options)}


def parse_mount(value: str) -> BindMount:
    """``SRC:DEST[:OPT,OPT...]`` (default options ``rbind,ro``)."""
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
        raise UsageError("--mount", f"{shown(repr(value), 200)} is not SRC:DEST[:OPTIONS] with absolute paths")
    options = tuple(o for o in parts[2].split(",") if o) if len(parts) == 3 else ("rbind", "ro")
    if "bind" not in options and "rbind" not in options:
        options = ("rbind", *options)
    return BindMount(source=parts[0], destination=parts[1], options=options)


#: Largest /etc/passwd or /etc/group read from an image.
MAX_DB = 16 << 20


def _user(root: RootDir, user: str | None) -> dict[str, int]:
    """Numeric uid/gid for the image's ``User`` (``name``, ``uid``, ``name:group``, ``uid:gid``);
    names are looked up in the image's /etc/passwd and /etc/group (read inside the image's
    root: symlinks resolve as in the container, never to the host)."""
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")
    passwd = _db(root, "etc/passwd")
    if _is_id(name):
        uid = int(name)
        default_gid = next((int(r[3]) for r in passwd.values() if r[2] == name and _is_id(r[3])), 0)
    elif name in passwd and _is_id(passwd[name][2]) and _is_id(passwd[name][3]):
        uid, default_gid = int(passwd[name][2]), int(passwd[name][3])
    else:
        raise LayerforgeError(f"user {shown(repr(name))} is not in the image's /etc/passwd")
    if not group:
        return {"uid": uid, "gid": default_gid}
    if _is_id(group):
        return {"uid": uid, "gid": int(group)}
    groups = _db(root, "etc/group")
    if group not in groups or not _is_id(groups[group][2]):
        raise LayerforgeError(f"group {shown(repr(group))} is not in the image's /etc/group")
    return {"uid": uid, "gid": int(groups[group][2])}


def _is_id(value: str) -> bool:
    """A uid or gid runc accepts (decimal, 32 bits)."""
    return value.isascii() and value.isdigit() and int(value) < 1 << 32


def _db(root: RootDir, rel: str) -> dict[str, list[str]]:
    """An /etc/passwd-style file by first field; missing means empty."""
    data = root.read_file(rel, MAX_DB)
    if data is None:
        return {}
    lines = data.decode("utf-8", "replace").splitlines()
    rows = [line.split(":") for line in lines if line and not line.startswith("#")]
    return {r[0]: r for r in rows if len(r) >= 4}


def runtime_config(cfg: RuntimeConfig, root: RootDir, *, readonly: bool, mounts: list[BindMount]) -> dict[str, Any]:
    args = list(cfg.entrypoint or ()) + list(cfg.cmd or ())
    if not args:
        raise LayerforgeError("the image has no entrypoint or command for the bundle to run")
    env = list(cfg.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    user_ids = _user(root, cfg.user)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": user_ids,
            "args": args,
            "env": env,
            "cwd": cfg.working_dir or "/",
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "layerforge",
        "mounts": [*SYSTEM_MOUNTS, *(m.to_json() for m in sorted(mounts, key=lambda m: m.destination))],
        "linux": {"namespaces": [{"type": t} for t in NAMESPACES]},
    }


def write_runtime_bundle(
    layout: OciLayout,
    ref: str | None,
    out: Path,
    *,
    readonly: bool = False,
    mounts: list[BindMount] | None = None,
    artifacts: Mapping[str, str] | None = None,
    epoch: int = 1,
) -> Path:
    """The bundle of the image ``ref``; ``artifacts`` (file name -> digest of an artifact
    manifest, e.g. ``sbom.spdx.json``) are written beside config.json, each its payload."""
    desc = select_manifest(layout, layout.resolve(ref), None)
    manifest = layout.read_manifest(desc)
    image_config = layout.read_config(manifest)
    parent = out.parent if str(out.parent) else Path(".")
    staging = new_scratch_dir(parent, "bundle")
    try:
        rootfs = staging / "rootfs"
        unpack_layers(layout, list(manifest.layers), image_config.diff_ids, rootfs)
        with RootDir(rootfs) as root:
            for d in ("proc", "sys", "dev"):
                root.make_dir(d, replace=False)
            config = runtime_config(image_config.config, root, readonly=readonly, mounts=list(mounts or []))
        atomic_write(staging / "config.json", canonical_json(config))
        for name, digest in sorted((artifacts or {}).items()):
            atomic_write(staging / name, _artifact_payload(layout, digest))
        os.utime(rootfs, (epoch, epoch))
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
        staging = Path()
    finally:
        if str(staging) not in ("", "."):
            with contextlib.suppress(OSError):
                remove_tree(staging)
    return out


def _artifact_payload(layout: OciLayout, digest: str) -> bytes:
    """The (single) payload blob of an artifact manifest."""
    data = layout.read_blob(digest)
    manifest = Manifest.from_json(load_json(data, f"artifact {digest}"), f"artifact {digest}")
    if len(manifest.layers) != 1:
        raise LayerforgeError(f"artifact {digest} has {len(manifest.layers)} payloads, expected 1")
    return layout.read_blob(manifest.layers[0].digest, manifest.layers[0].size)
