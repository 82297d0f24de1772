"""Get a platform's kernel, initrd and kconfig back out of a unikernel package, the way
``kraft run`` finds them: by platform and architecture in the index, then the well-known
paths in the (uncompressed) layers. Every layer is checked against its digest first.

Everything is written into a staging directory next to ``--out`` and swapped into place in
one step, so ``--out`` holds the previous result or the complete new one, never a mix (a
reused ``--out`` keeps no file of the previous package)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayoutError, UsageError
from layerforge.images.unikraft import documents as doc
from layerforge.images.unikraft.kconfig import render_kconfig
from layerforge.images.unikraft.platforms import normalize_arch, normalize_plat
from layerforge.layout.atomic import exchange_dirs
from layerforge.layout.image_reader import index_manifests
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import is_stale, new_scratch_dir, scratch_name
from layerforge.layout.whiteouts import clean_name
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import check_config
from layerforge.model.reference import LayoutRef
from layerforge.trust.blobs import check_blob
from layerforge.trust.rootfs import remove_tree
from layerforge.trust.tars import check_complete, reading_tar
from layerforge.trust.text import shown

_WANTED = {doc.KERNEL_PATH.lstrip("/"): "kernel", doc.INITRD_PATH.lstrip("/"): "initrd"}
#: What an extraction writes; a reused --out may hold only these.
OUTPUTS = ("kernel", "initrd", "kconfig", "config.json")


@dataclass(frozen=True)
class Extracted:
    manifest: Descriptor
    files: dict[str, Path]


def find_platform(layout: OciLayout, entry: Descriptor, plat: str, arch: str) -> Descriptor:
    if entry.media_type != media_types.IMAGE_INDEX:
        raise LayoutError(f"{entry.digest} is not an image index, so not a unikernel package")
    children = index_manifests(layout, entry)
    for m in children:
        if m.platform is not None and doc.platform_key(m) == (plat, arch):
            return m
    have = ", ".join(f"{m.platform.os}/{m.platform.architecture}" for m in children if m.platform) or "none"
    raise LayoutError(f"the package has no {plat}/{arch} manifest (it has: {shown(have)})")


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError("--out", f"'{out}' exists and is not a directory")
    if out.is_dir():
        others = sorted(n for n in os.listdir(out) if n not in OUTPUTS and not is_stale(n))
        if others:
            raise UsageError(
                "--out", f"'{out}' holds other files than a previous extraction's ({shown(', '.join(others[:5]))})"
            )


def extract_unikraft(target: LayoutRef, plat: str, arch: str, out: Path) -> Extracted:
    plat, arch = normalize_plat(plat), normalize_arch(arch)
    layout = OciLayout.open(target.path)
    desc = find_platform(layout, layout.resolve(target.ref), plat, arch)
    manifest = layout.read_manifest(desc)
    config = layout.read_json(manifest.config, "config")
    features = check_config(config, layout.where(manifest.config, "config")).strings("os.features") or ()
    _check_out(out)
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    staging = new_scratch_dir(parent, "extract")
    try:
        names = _write_files(layout, manifest.layers, staging)
        if "kernel" not in names:
            raise LayoutError(f"manifest {desc.digest} has no {doc.KERNEL_PATH}")
        (staging / "kconfig").write_text(render_kconfig(features))
        (staging / "config.json").write_bytes(json.dumps(config, indent=2, sort_keys=True).encode() + b"\n")
        for name in ("kconfig", "config.json"):
            (staging / name).chmod(0o644)
        _publish(staging, out)
    finally:
        with contextlib.suppress(OSError):
            remove_tree(staging)
    return Extracted(desc, {name: out / name for name in [*names, "kconfig", "config.json"]})


def _write_files(layout: OciLayout, layers: tuple[Descriptor, ...], staging: Path) -> list[str]:
    """The kernel and initrd of the layers, written into ``staging``; their names."""
    written: list[str] = []
    for i, layer in enumerate(layers, 1):
        what = f"'{layout.root}': layer {i} ({layer.digest})"
        if layer.media_type != media_types.LAYER_TAR:
            kind = shown(repr(layer.media_type))
            raise LayoutError(f"layer {layer.digest} is {kind}; unikernel layers are plain tars")
        layout.require_blob(layer.digest, what)
        blob = layout.blob_path(layer.digest)
        check_blob(blob, layer.digest, layer.size, what)
        with reading_tar(blob, what) as tar:
            for member in tar:
                name = _WANTED.get(clean_name(member.name, what))
                if name is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                with src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                (staging / name).chmod(0o644)
                if name not in written:
                    written.append(name)
            check_complete(tar, what)
    return written


def _publish(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out`` in one step (the old ``out`` goes, whole)."""
    if out.is_dir():
        staging.chmod(stat.S_IMODE(out.stat().st_mode))
        if not exchange_dirs(staging, out):
            old = out.parent / scratch_name("extract")
            os.rename(out, old)
            os.rename(staging, out)
            staging = old
        remove_tree(staging)
    else:
        umask = os.umask(0o022)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        os.rename(staging, out)
