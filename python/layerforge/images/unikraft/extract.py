"""Get a platform's kernel, initrd and kconfig back out of a unikernel package, the way
``kraft run`` finds them: by platform and architecture in the index, then the well-known
paths in the (uncompressed) layers. Every layer is checked against its digest first."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayoutError, UsageError
from layerforge.images.unikraft import documents as doc
from layerforge.images.unikraft.kconfig import render_kconfig
from layerforge.images.unikraft.platforms import normalize_arch, normalize_plat
from layerforge.layout.atomic import atomic_write
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.reference import LayoutRef

_WANTED = {doc.KERNEL_PATH.lstrip("/"): "kernel", doc.INITRD_PATH.lstrip("/"): "initrd"}


@dataclass(frozen=True)
class Extracted:
    manifest: Descriptor
    files: dict[str, Path]


def find_platform(layout: OciLayout, entry: Descriptor, plat: str, arch: str) -> Descriptor:
    if entry.media_type != media_types.IMAGE_INDEX:
        raise LayoutError(f"{entry.digest} is not an image index, so not a unikernel package")
    children = layout.read_nested_index(entry).manifests
    for m in children:
        if m.platform is not None and doc.platform_key(m) == (plat, arch):
            return m
    have = ", ".join(f"{m.platform.os}/{m.platform.architecture}" for m in children if m.platform) or "none"
    raise LayoutError(f"the package has no {plat}/{arch} manifest (it has: {have})")


def extract_unikraft(target: LayoutRef, plat: str, arch: str, out: Path) -> Extracted:
    plat, arch = normalize_plat(plat), normalize_arch(arch)
    layout = OciLayout.open(target.path)
    desc = find_platform(layout, layout.resolve(target.ref), plat, arch)
    manifest = layout.read_manifest(desc)
    config = layout.read_json(manifest.config)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"'{out}' exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    tmp = out / f".extract.{os.getpid()}.tmp"
    tmp.mkdir(exist_ok=True)
    try:
        for layer in manifest.layers:
            if layer.media_type != media_types.LAYER_TAR:
                raise LayoutError(f"layer {layer.digest} is {layer.media_type!r}; unikernel layers are plain tars")
            blob = layout.blob_path(layer.digest)
            _verify(blob, layer)
            with tarfile.open(blob, "r:") as tar:
                for member in tar:
                    name = _WANTED.get(member.name.lstrip("./"))
                    if name is None or not member.isfile():
                        continue
                    src = tar.extractfile(member)
                    if src is None:
                        continue
                    with src, open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    written[name] = out / name
        if "kernel" not in written:
            raise LayoutError(f"manifest {desc.digest} has no {doc.KERNEL_PATH}")
        for name, path in written.items():
            os.replace(tmp / name, path)
        kconfig = render_kconfig(config.get("os.features") or [])
        atomic_write(out / "kconfig", kconfig.encode(), tmp)
        written["kconfig"] = out / "kconfig"
        atomic_write(out / "config.json", json.dumps(config, indent=2, sort_keys=True).encode() + b"\n", tmp)
        written["config.json"] = out / "config.json"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Extracted(desc, written)


def _verify(blob: Path, layer: Descriptor) -> None:
    h = hashlib.sha256()
    size = 0
    try:
        with open(blob, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise LayoutError(f"blob {layer.digest} is missing") from None
    if "sha256:" + h.hexdigest() != layer.digest or size != layer.size:
        raise LayoutError(f"blob {layer.digest} does not match its digest (corrupt layout)")
