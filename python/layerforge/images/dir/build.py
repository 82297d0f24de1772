"""Build a single-layer image from a root filesystem directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.errors import UsageError
from layerforge.layers.build import DEFAULT_COMPRESSION, build_layers
from layerforge.layout.image_writer import ImageResult, write_image
from layerforge.layout.oci_layout import open_for_write
from layerforge.model.annotations import image_annotations
from layerforge.model.epoch import rfc3339, source_date_epoch
from layerforge.model.image_config import HistoryEntry, ImageConfig, RuntimeConfig
from layerforge.model.platform import linux_platform
from layerforge.model.reference import DEFAULT_TAG, validate_ref
from layerforge.option_flags import default
from layerforge.progress import ProgressCallback


@dataclass(frozen=True)
class DirImageRequest:
    rootfs: Path
    ref: str = DEFAULT_TAG
    arch: str = "amd64"
    compression: str = DEFAULT_COMPRESSION
    level: int | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    source: str | None = None
    revision: str | None = None
    keep_setuid: bool = False
    threads: int = int(default("layer.threads"))


def build_dir_image(
    out: Path,
    req: DirImageRequest,
    *,
    epoch: int | None = None,
    progress: ProgressCallback | None = None,
) -> ImageResult:
    if not req.rootfs.exists():
        raise UsageError("ROOTFS_DIR", f"'{req.rootfs}' does not exist")
    if not req.rootfs.is_dir():
        raise UsageError("ROOTFS_DIR", f"'{req.rootfs}' is not a directory")
    source, target = req.rootfs.resolve(), out.resolve()
    if target == source or source in target.parents:
        raise UsageError("--out", f"'{out}' is inside ROOTFS_DIR '{req.rootfs}': the image would archive itself")
    validate_ref(req.ref)
    platform = linux_platform(req.arch)
    epoch = source_date_epoch() if epoch is None else epoch

    spec = LayerSpec(mtime=epoch, keep_setuid=req.keep_setuid)
    spec.add_tree(req.rootfs, "/")
    created = rfc3339(epoch)
    with open_for_write(out) as layout:
        (layer,) = build_layers(
            layout,
            [spec],
            compression=req.compression,
            level=req.level,
            threads=req.threads,
            progress=progress,
        )
        config = ImageConfig(
            platform=platform,
            created=created,
            diff_ids=(layer.diff_id,),
            config=req.runtime,
            history=(HistoryEntry(created=created, created_by="layerforge dir-image"),),
        )
        return write_image(
            layout,
            config,
            [layer.descriptor],
            annotations=image_annotations(epoch, req.source, req.revision),
            ref=req.ref,
        )
