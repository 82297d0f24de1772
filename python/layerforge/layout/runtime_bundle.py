"""OCI runtime bundles (``config.json`` + ``rootfs/``), the shape nixpkgs'
``ociTools.buildContainer`` produces: the image's layers unpacked into ``rootfs``, and a
runtime-spec configuration running the image's entrypoint and command with its environment,
the standard Linux system mounts plus the user's bind mounts, optionally a read-only root.

The bundle is assembled next to ``out`` and renamed into place, so ``out`` is either absent
or complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.atomic import atomic_write
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.unpack import unpack_layers
from layerforge.model.canonical_json import canonical_json

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
        raise UsageError("--mount", f"{value!r} is not SRC:DEST[:OPTIONS] with absolute paths")
    options = tuple(o for o in parts[2].split(",") if o) if len(parts) == 3 else ("rbind", "ro")
    if "bind" not in options and "rbind" not in options:
        options = ("rbind", *options)
    return BindMount(source=parts[0], destination=parts[1], options=options)


def _user(rootfs: Path, user: str | None) -> dict[str, int]:
    """Numeric uid/gid for the image's ``User`` (``name``, ``uid``, ``name:group``, ``uid:gid``);
    names are looked up in the image's /etc/passwd and /etc/group."""
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")
    passwd = _db(rootfs / "etc" / "passwd")
    if name.isdigit():
        uid = int(name)
        default_gid = next((int(r[3]) for r in passwd.values() if r[2] == name), 0)
    elif name in passwd:
        uid, default_gid = int(passwd[name][2]), int(passwd[name][3])
    else:
        raise LayerforgeError(f"user {name!r} is not in the image's /etc/passwd")
    if not group:
        return {"uid": uid, "gid": default_gid}
    if group.isdigit():
        return {"uid": uid, "gid": int(group)}
    groups = _db(rootfs / "etc" / "group")
    if group not in groups:
        raise LayerforgeError(f"group {group!r} is not in the image's /etc/group")
    return {"uid": uid, "gid": int(groups[group][2])}


def _db(path: Path) -> dict[str, list[str]]:
    """An /etc/passwd-style file by first field; missing or unreadable means empty."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    rows = [line.split(":") for line in lines if line and not line.startswith("#")]
    return {r[0]: r for r in rows if len(r) >= 4}


def runtime_config(
    image_config: dict[str, Any], rootfs: Path, *, readonly: bool, mounts: list[BindMount]
) -> dict[str, Any]:
    cfg = image_config.get("config") or {}
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not args:
        raise LayerforgeError("the image has no entrypoint or command for the bundle to run")
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    user_ids = _user(rootfs, cfg.get("User"))
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": user_ids,
            "args": args,
            "env": env,
            "cwd": cfg.get("WorkingDir") or "/",
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
    sbom: str | None = None,
    epoch: int = 1,
) -> Path:
    desc = select_manifest(layout, layout.resolve(ref), None)
    manifest = layout.read_manifest(desc)
    image_config = layout.read_json(manifest.config)
    parent = out.parent if str(out.parent) else Path(".")
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.bundle-"))
    try:
        rootfs = staging / "rootfs"
        unpack_layers(layout, list(manifest.layers), rootfs)
        for d in ("proc", "sys", "dev"):
            (rootfs / d).mkdir(exist_ok=True)
        config = runtime_config(image_config, rootfs, readonly=readonly, mounts=list(mounts or []))
        atomic_write(staging / "config.json", canonical_json(config))
        if sbom is not None:
            atomic_write(staging / "sbom.spdx.json", _artifact_payload(layout, sbom))
        os.utime(rootfs, (epoch, epoch))
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
        staging = Path()
    finally:
        if str(staging) not in ("", ".") and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _artifact_payload(layout: OciLayout, digest: str) -> bytes:
    """The (single) payload blob of an artifact manifest."""
    manifest = json.loads(layout.read_blob(digest))
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        raise LayerforgeError(f"artifact {digest} has {len(layers)} payloads, expected 1")
    return layout.read_blob(layers[0]["digest"])
