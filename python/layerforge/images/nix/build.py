"""Building a planned nix-image in one process: layer blobs (reused from the layer cache
when their store paths were built before), then assembly. Pants runs the same steps as
separate processes (see ``layerforge nix-layer`` and ``layerforge nix-assemble``)."""

from __future__ import annotations

from dataclasses import replace

from layerforge.images.nix.assemble import NixImageResult, assemble
from layerforge.images.nix.layer_cache import LayerCache, layer_key
from layerforge.images.nix.layer_jobs import STORE_PATHS, build_jobs
from layerforge.images.nix.plan import NixPlan
from layerforge.images.nix.provenance import BuildInputs
from layerforge.layers.build import BuiltLayer
from layerforge.layout.image_reader import StoredImage
from layerforge.layout.oci_layout import OciLayout
from layerforge.progress import ProgressCallback


def build_nix_image(
    layout: OciLayout,
    plan: NixPlan,
    base: StoredImage | None,
    *,
    cache: LayerCache | None = None,
    threads: int = 0,
    progress: ProgressCallback | None = None,
    build: BuildInputs | None = None,
) -> NixImageResult:
    """Build the plan's layer jobs into ``layout`` (opened for writing and locked by the
    caller), store-path layers reused from ``cache`` where it has them; ``build`` is what the
    provenance records beyond the plan."""
    cache = cache or LayerCache(None)
    jobs = plan.layer_jobs()
    keys = {i: layer_key(job.store_paths, job.cache_options()) for i, job in enumerate(jobs) if job.kind == STORE_PATHS}
    found: dict[int, BuiltLayer] = {}
    for i, key in keys.items():
        hit = cache.fetch(key, layout)
        if hit is not None:
            found[i] = hit
    todo = [i for i in range(len(jobs)) if i not in found]
    built_now = build_jobs(layout, [jobs[i] for i in todo], threads=threads, progress=progress)
    for i, layer in zip(todo, built_now):
        found[i] = layer
        if i in keys:
            cache.store(keys[i], layer, layout)
    result = assemble(layout, plan, [found[i] for i in range(len(jobs))], base, build=build)
    return replace(result, cache_hits=cache.stats.hits, cache_misses=cache.stats.misses)
