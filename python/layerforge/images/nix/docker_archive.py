"""``nix-image --format docker-archive``: the image written as one archive in one pass.

Without a layer cache, each store-path layer is built by the native core straight into the
archive (no blob, no layout in between); the base image's layers are copied in from their
blobs (in-kernel, verified; a compressed one decompressed first). With a cache the layers
must exist as blobs anyway (the cache keeps them): they are built, or found, in a scratch
layout and copied in the same way, so the archive has the same bytes either way. The config
follows the layers (its digest depends on theirs), then ``manifest.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.images.nix.assemble import image_config
from layerforge.images.nix.build import build_nix_image
from layerforge.images.nix.layer_cache import LayerCache
from layerforge.images.nix.plan import NixPlan
from layerforge.layout.docker_archive import LayerFile, layer_file, write_streamed_archive
from layerforge.layout.image_reader import StoredImage
from layerforge.layout.oci_layout import open_for_write
from layerforge.layout.scratch import scratch_dir
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import sha256_digest
from layerforge.model.manifest import Manifest
from layerforge.progress import ProgressCallback


@dataclass(frozen=True)
class NixArchiveResult:
    #: The digest the image's OCI manifest has (as in an ``oci`` build of the same plan).
    manifest_digest: str
    layers: int
    cache_hits: int = 0
    cache_misses: int = 0


def write_nix_docker_archive(
    plan: NixPlan,
    base: StoredImage | None,
    out: Path,
    *,
    tags: Sequence[str],
    cache: LayerCache,
    threads: int = 0,
    progress: ProgressCallback | None = None,
) -> NixArchiveResult:
    parent = out.parent if str(out.parent) else Path(".")
    from_layout = cache.enabled or plan.nix_snapshotter
    with scratch_dir(parent, "build") as tmp:
        base_files = _base_files(base, tmp) if base is not None else []
        if from_layout:
            with open_for_write(tmp / "layout") as layout:
                built = build_nix_image(layout, plan, base, cache=cache, threads=threads, progress=progress)
                manifest = layout.read_manifest(built.image.manifest)
                config_bytes = layout.read_blob(manifest.config.digest, manifest.config.size)
                diff_ids = layout.read_config(manifest).diff_ids
                n = len(base_files)
                own = [
                    layer_file(layout, d, diff_id, f"'{layout.root}': layer {n + i + 1} ({d.digest})", tmp)
                    for i, (d, diff_id) in enumerate(zip(manifest.layers[n:], diff_ids[n:]))
                ]
            written = write_streamed_archive(
                out, [*base_files, *own], lambda _: config_bytes, tags=tags, epoch=plan.epoch, threads=threads
            )
            return NixArchiveResult(built.image.manifest.digest, len(written), built.cache_hits, built.cache_misses)

        config: list[bytes] = []

        def config_for(diff_ids: list[str]) -> bytes:
            cfg, _ = image_config(plan, diff_ids[len(base_files) :], base)
            config.append(canonical_json(cfg.to_json()))
            return config[-1]

        members = write_streamed_archive(
            out, [*base_files, *_specs(plan)], config_for, tags=tags, epoch=plan.epoch, threads=threads,
            machine=plan.machine, progress=progress,
        )  # fmt: skip
    _, annotations = image_config(plan, [], base)
    descriptors = [
        *(base.manifest.layers if base is not None else ()),
        *(
            Descriptor(media_type=media_types.LAYER_BY_COMPRESSION["none"], digest=diff_id, size=size)
            for diff_id, size in members[len(base_files) :]
        ),
    ]
    config_desc = Descriptor(
        media_type=media_types.IMAGE_CONFIG, digest=sha256_digest(config[-1]), size=len(config[-1])
    )
    manifest_doc = Manifest(config=config_desc, layers=tuple(descriptors), annotations=annotations)
    return NixArchiveResult(sha256_digest(canonical_json(manifest_doc.to_json())), len(members))


def _specs(plan: NixPlan) -> list[LayerSpec]:
    """The native specs of the plan's layer jobs (store paths and root: the streamed path
    builds no snapshotter layer)."""
    return [job.spec()[0] for job in plan.layer_jobs()]


def _base_files(base: StoredImage, scratch: Path) -> list[LayerFile]:
    return [
        layer_file(base.layout, d, diff_id, f"'{base.layout.root}': base layer {i + 1} ({d.digest})", scratch)
        for i, (d, diff_id) in enumerate(zip(base.manifest.layers, base.config.diff_ids))
    ]
