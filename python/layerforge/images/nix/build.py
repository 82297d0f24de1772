"""Building a planned nix-image in one process: layer blobs (reused from the layer cache
when their store paths were built before), then assembly. Pants runs the same steps as
separate processes (see ``layerforge nix-layer`` and ``layerforge nix-assemble``)."""

from __future__ import annotations

from dataclasses import replace

from layerforge.images.nix.assemble import NixImageResult, assemble
from layerforge.images.nix.layer_cache import LayerCache, layer_key
from layerforge.images.nix.layer_specs import root_spec, snapshotter_spec, store_paths_spec
from layerforge.images.nix.plan import NixPlan
from layerforge.layers.build import BuiltLayer, build_layers
from layerforge.layout.image_reader import StoredImage
from layerforge.layout.oci_layout import OciLayout
from layerforge.progress import ProgressCallback


def layer_cache_options(plan: NixPlan) -> dict[str, object]:
    """Everything besides the store paths that shapes a store-path layer's bytes."""
    return {
        "kind": "nix-store-paths",
        "mtime": plan.epoch,
        "compression": plan.compression,
        "level": plan.level,
        "perms": [p.to_json() for p in plan.perms],
        "machine": plan.machine,
    }


def build_nix_image(
    layout: OciLayout,
    plan: NixPlan,
    base: StoredImage | None,
    *,
    cache: LayerCache | None = None,
    threads: int = 0,
    progress: ProgressCallback | None = None,
) -> NixImageResult:
    """Build into ``layout`` (opened for writing and locked by the caller)."""
    cache = cache or LayerCache(None)
    if plan.nix_snapshotter:
        spec, annotations = snapshotter_spec(
            plan.closure.paths, plan.copy_to_root, plan.copy_to_root_mode, plan.epoch, plan.account
        )
        (built,) = build_layers(layout, [spec], compression="gzip", threads=threads, progress=progress)
        layers = [replace(built, descriptor=built.descriptor.with_annotations(annotations))]
        return assemble(layout, plan, layers, base)

    options = layer_cache_options(plan)
    keys = [layer_key(g.paths, options) for g in plan.layers]
    found: dict[int, BuiltLayer] = {}
    for i, key in enumerate(keys):
        hit = cache.fetch(key, layout)
        if hit is not None:
            found[i] = hit
    todo = [i for i in range(len(plan.layers)) if i not in found]
    specs = [store_paths_spec(plan.layers[i].paths, plan.epoch, plan.perms) for i in todo]
    if plan.has_root_layer:
        specs.append(root_spec(plan.copy_to_root, plan.copy_to_root_mode, plan.epoch, plan.account))
    built_now = build_layers(
        layout,
        specs,
        compression=plan.compression,
        level=plan.level,
        threads=threads,
        machine=plan.machine,
        progress=progress,
    )
    for i, layer in zip(todo, built_now):
        found[i] = layer
        cache.store(keys[i], layer, layout)
    layers = [found[i] for i in range(len(plan.layers))]
    if plan.has_root_layer:
        layers.append(built_now[-1])
    result = assemble(layout, plan, layers, base)
    return replace(result, cache_hits=cache.stats.hits, cache_misses=cache.stats.misses)
