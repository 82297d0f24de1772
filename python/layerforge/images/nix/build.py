"""Building a Nix closure into an OCI image: inputs -> closure -> layer plan -> blobs -> image.

All checks that can fail on input (store paths, layer budget, groups, copy-to-root conflicts,
entrypoint, base image) run before anything is written.
"""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass, field
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix import copy_to_root as ctr
from layerforge.images.nix.closure import Closure, Nix
from layerforge.images.nix.image_view import ImageView, NotInClosure, Stat
from layerforge.images.nix.layer_cache import LayerCache, layer_key
from layerforge.images.nix.layering import LayerGroup, plan_layers
from layerforge.images.nix.sbom import SPDX_MEDIA_TYPE, spdx_document
from layerforge.images.nix.snapshotter import layer_spec as snapshotter_layer_spec
from layerforge.images.nix.store_path import STORE_DIR, parse_store_path
from layerforge.layers.build import BuiltLayer, build_layers
from layerforge.layout.artifact import attach_artifact
from layerforge.layout.image_reader import StoredImage, import_blobs, list_files, read_image
from layerforge.layout.image_writer import ImageResult, write_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.annotations import BASE_DIGEST, BASE_NAME, image_annotations
from layerforge.model.canonical_json import canonical_json
from layerforge.model.config_merge import merge_runtime
from layerforge.model.epoch import rfc3339
from layerforge.model.image_config import HistoryEntry, ImageConfig, RuntimeConfig
from layerforge.model.platform import linux_platform
from layerforge.model.reference import DEFAULT_TAG, LayoutRef, validate_ref
from layerforge.progress import ProgressCallback

#: Docker refuses images with more layers (moby layer/layer_store.go maxLayerDepth).
LAYER_LIMIT = 125
DEFAULT_MAX_LAYERS = 100


@dataclass(frozen=True)
class PermSpec:
    pattern: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    def to_json(self) -> list[object]:
        return [self.pattern, self.mode, self.uid, self.gid]


@dataclass(frozen=True)
class NixImageRequest:
    nix_file: Path | None = None
    attr: str | None = None
    argstrs: tuple[tuple[str, str], ...] = ()
    store_paths: tuple[str, ...] = ()
    ref: str = DEFAULT_TAG
    arch: str | None = None
    layering: str = "popularity"
    max_layers: int = DEFAULT_MAX_LAYERS
    layer_groups: tuple[tuple[str, ...], ...] = ()
    copy_to_root: tuple[str, ...] = ()
    copy_to_root_mode: str = "symlink"
    perms: tuple[PermSpec, ...] = ()
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    from_image: LayoutRef | None = None
    compression: str = "gzip"
    level: int | None = None
    threads: int = 0
    nix_snapshotter: bool = False
    sbom: bool = False
    source: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class NixImageResult:
    image: ImageResult
    closure: Closure
    plan: tuple[LayerGroup, ...]
    base_layers: int
    cache_hits: int
    cache_misses: int
    sbom: str | None = None


def host_arch() -> str:
    machine = host_platform.machine()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def resolve_roots(req: NixImageRequest, nix: Nix) -> list[str]:
    if req.nix_file is not None and req.store_paths:
        raise UsageError("--nix-file", "give either --nix-file or --store-path, not both")
    if req.nix_file is not None:
        return nix.build(req.nix_file, req.attr, req.argstrs)
    if req.attr or req.argstrs:
        raise UsageError("--attr" if req.attr else "--argstr", "needs --nix-file")
    if not req.store_paths:
        raise UsageError("--store-path", "give --nix-file FILE or at least one --store-path")
    return [parse_store_path(p).path for p in req.store_paths]


def _check_request(req: NixImageRequest) -> None:
    validate_ref(req.ref)
    if not 1 <= req.max_layers <= LAYER_LIMIT:
        raise UsageError("--max-layers", f"{req.max_layers} is outside 1..{LAYER_LIMIT} (Docker refuses more)")
    for p in req.copy_to_root:
        parse_store_path(p, "--copy-to-root")
    for g in req.layer_groups:
        for p in g:
            parse_store_path(p, "--layer-group")


def prepare(
    req: NixImageRequest, nix: Nix
) -> tuple[Closure, StoredImage | None, list[LayerGroup], dict[str, ctr.RootEntry], RuntimeConfig]:
    """Everything that can fail on input, before any write."""
    _check_request(req)
    arch = req.arch or host_arch()
    linux_platform(arch)
    roots = resolve_roots(req, nix)
    closure = nix.closure(sorted({*roots, *req.copy_to_root}))

    base = None
    if req.from_image is not None:
        base = read_image(req.from_image, platform=f"linux/{arch}")
        if base.config.platform.architecture != arch:
            raise UsageError(
                "--from-image",
                f"{req.from_image} is {base.config.platform}, the image being built is linux/{arch}",
            )
    base_layers = len(base.manifest.layers) if base else 0
    root = ctr.plan_root(req.copy_to_root, req.copy_to_root_mode)
    extra = 1 if root or req.nix_snapshotter else 0
    budget = req.max_layers - base_layers - (0 if req.nix_snapshotter else extra)
    if req.nix_snapshotter:
        plan: list[LayerGroup] = []
        if base_layers + 1 > req.max_layers:
            raise UsageError("--max-layers", f"{req.max_layers} leaves no room above {base_layers} base layers")
    else:
        if budget < 1:
            raise UsageError(
                "--max-layers",
                f"{req.max_layers} leaves no room for the closure above {base_layers} base layers"
                + (" and the root layer" if root else ""),
            )
        plan = plan_layers(closure, strategy=req.layering, budget=budget, groups=req.layer_groups)

    runtime = merge_runtime(base.config.config, req.runtime) if base else req.runtime
    _check_entrypoint(closure, root, base, runtime)
    return closure, base, plan, root, runtime


def _check_entrypoint(
    closure: Closure, root: dict[str, ctr.RootEntry], base: StoredImage | None, runtime: RuntimeConfig
) -> None:
    argv = list(runtime.entrypoint or ()) + list(runtime.cmd or ())
    if not argv:
        return
    base_files: dict[str, tuple[str, str]] | None = None

    def base_lookup(path: str) -> Stat:
        nonlocal base_files
        if base is None:
            return None
        if base_files is None:
            base_files = list_files(base)
        return base_files.get(path)

    view = ImageView(set(closure.infos), root, base_lookup if base else None)
    option = "--entrypoint" if runtime.entrypoint else "--cmd"
    try:
        view.find_program(argv[0], runtime.env, runtime.working_dir)
    except NotInClosure as e:
        raise UsageError(option, str(e)) from None
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None


def _store_path_spec(group: LayerGroup, epoch: int, perms: tuple[PermSpec, ...]) -> LayerSpec:
    spec = LayerSpec(mtime=epoch, keep_setuid=True)
    spec.add_dir("/nix", 0o755)
    spec.add_dir(STORE_DIR, 0o755)
    for p in group.paths:
        if _is_dir(p):
            spec.add_tree(p, p)
        else:
            spec.add_path(p, p)  # a store path can be a single file or symlink
    for rule in perms:
        spec.add_perm_rule(rule.pattern, rule.mode, rule.uid, rule.gid)
    return spec


def _is_dir(p: str) -> bool:
    return Path(p).is_dir() and not Path(p).is_symlink()


def build_nix_image(
    layout: OciLayout,
    req: NixImageRequest,
    *,
    epoch: int,
    nix: Nix | None = None,
    cache: LayerCache | None = None,
    progress: ProgressCallback | None = None,
    prepared: tuple[Closure, StoredImage | None, list[LayerGroup], dict[str, ctr.RootEntry], RuntimeConfig]
    | None = None,
) -> NixImageResult:
    """Build into ``layout`` (opened for writing and locked by the caller)."""
    nix = nix or Nix()
    cache = cache or LayerCache(None)
    closure, base, plan, root, runtime = prepared or prepare(req, nix)
    arch = req.arch or host_arch()
    created = rfc3339(epoch)

    layers: list[BuiltLayer] = []
    history: list[HistoryEntry] = []
    if base is not None:
        import_blobs(base.layout, layout, [*base.manifest.layers])
    if req.nix_snapshotter:
        spec, layer_annotations = snapshotter_layer_spec(closure, root, epoch)
        (built,) = build_layers(layout, [spec], compression="gzip", threads=req.threads, progress=progress)
        built = BuiltLayer(built.descriptor.with_annotations(layer_annotations), built.diff_id, built.uncompressed_size)
        layers.append(built)
        history.append(HistoryEntry(created, "layerforge nix-image: nix-snapshotter layer"))
    else:
        options = {
            "kind": "nix-store-paths",
            "mtime": epoch,
            "compression": req.compression,
            "level": req.level,
            "perms": [p.to_json() for p in req.perms],
        }
        keys = [layer_key(g.paths, options) for g in plan]
        found: dict[int, BuiltLayer] = {}
        for i, key in enumerate(keys):
            hit = cache.fetch(key, layout)
            if hit is not None:
                found[i] = hit
        todo = [i for i in range(len(plan)) if i not in found]
        specs = [_store_path_spec(plan[i], epoch, req.perms) for i in todo]
        if root:
            root_spec = LayerSpec(mtime=epoch)
            ctr.add_to_spec(root_spec, root)
            specs.append(root_spec)
        built_now = build_layers(
            layout, specs, compression=req.compression, level=req.level, threads=req.threads, progress=progress
        )
        for i, b in zip(todo, built_now):
            found[i] = b
            cache.store(keys[i], b, layout)
        for i, group in enumerate(plan):
            layers.append(found[i])
            names = ", ".join(parse_store_path(p).name for p in group.paths[:3])
            more = f" and {len(group.paths) - 3} more" if len(group.paths) > 3 else ""
            history.append(HistoryEntry(created, f"layerforge nix-image: {names}{more}"))
        if root:
            layers.append(built_now[-1])
            history.append(HistoryEntry(created, "layerforge nix-image: copy-to-root"))

    base_history = base.config.history if base else ()
    config = ImageConfig(
        platform=linux_platform(arch),
        created=created,
        diff_ids=(*(base.config.diff_ids if base else ()), *(layer.diff_id for layer in layers)),
        config=runtime,
        history=(*base_history, *history),
    )
    annotations = image_annotations(epoch, req.source, req.revision)
    if base is not None:
        annotations[BASE_DIGEST] = base.descriptor.digest
        if base.ref:
            annotations[BASE_NAME] = base.ref
    image = write_image(
        layout,
        config,
        [*(base.manifest.layers if base else ()), *(layer.descriptor for layer in layers)],
        annotations=annotations,
        ref=req.ref,
    )
    sbom_digest = None
    if req.sbom:
        doc = spdx_document(closure, req.ref, epoch)
        sbom_digest = attach_artifact(
            layout,
            image.manifest,
            artifact_type=SPDX_MEDIA_TYPE,
            payload=canonical_json(doc),
            payload_media_type=SPDX_MEDIA_TYPE,
            title="sbom.spdx.json",
            epoch=epoch,
        ).digest
    return NixImageResult(
        image=image,
        closure=closure,
        plan=tuple(plan),
        base_layers=len(base.manifest.layers) if base else 0,
        cache_hits=cache.stats.hits,
        cache_misses=cache.stats.misses,
        sbom=sbom_digest,
    )
