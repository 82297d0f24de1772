"""The layers of a planned nix-image as typed jobs: one per store-path group, the root layer
(copy-to-root entries and the account's files) and nix-snapshotter's single layer.

A job holds everything that decides its layer's bytes. It gives the native spec ``nix-image``
builds in-process; ``nix-layer`` builds the same jobs from the layer job document the plan
writes for them (:mod:`layer_job_document`, read back into these very jobs). The assembler's
layer count and history come from the same list, in the same order.

For build systems the plan groups consecutive small store-path jobs into batches
(:func:`batch_jobs`): Pants runs one process per batch, with the batch's argv (its layer job
document) as the whole of its cache key, so the cost of a process (a sandbox, a fork, one
store validity check) is paid once per batch of small layers rather than once per layer. A
batch's layers are the layers its jobs build alone, byte for byte; only the process that
builds them differs. Batches are made so that images sharing layers share their processes
(one build per distinct layer in a monorepo, locally and through a remote cache): a layer of
``ALONE_BYTES`` or more runs alone, and a run of small ones is cut where its own jobs say
(content-defined boundaries), never where an image's list happens to start or fill up.

An image that shares no layer with another (the only one a build system has) is better served
by the fewest processes: its plan asks for :data:`PER_IMAGE` batches, consecutive store-path
jobs up to :data:`PER_IMAGE_BATCH_BYTES` whatever their size (a changed path then rebuilds its
batch's neighbours too, where every process would cost more than they do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from layerforge._native import LayerSpec
from layerforge.images.nix.accounts import Account
from layerforge.images.nix.layer_specs import root_spec, snapshotter_spec, store_paths_spec
from layerforge.images.nix.perms import PermSpec
from layerforge.images.nix.store_path import parse_store_path
from layerforge.layers.build import DEFAULT_COMPRESSION, BuiltLayer, build_layers
from layerforge.layout.oci_layout import OciLayout
from layerforge.progress import ProgressCallback

STORE_PATHS, ROOT, SNAPSHOTTER = "store-paths", "root", "snapshotter"
KINDS = (STORE_PATHS, ROOT, SNAPSHOTTER)
#: nix-snapshotter's single layer is a gzip'd tar at the default level, whatever the image's
#: compression (a format rule of the snapshotter, not a default).
SNAPSHOTTER_COMPRESSION = "gzip"
#: The directory a job's ``nix-layer`` writes, relative to where it runs (a batch's jobs
#: write ``layer1``, ``layer2``, ...).
LAYER_DIR = "layer"
#: A batch of store-path jobs holds store paths of at most this many NAR bytes in all, unless
#: it is one job.
BATCH_BYTES = 64 << 20
#: A store-path job of at least this many NAR bytes runs alone (its build, not the process, is
#: its cost): its process is then the same in every image that holds the layer.
ALONE_BYTES = 8 << 20
#: A batch of small jobs ends after a job whose first store path hashes to 0 modulo this (about
#: this many small layers per process): the same run of small layers in two images is cut at
#: the same places, whatever comes before or after it in each.
CUT_EVERY = 4
#: How a plan batches its jobs: so that images sharing layers share their processes (the
#: default), or into the fewest processes for an image that shares no layer.
SHARED, PER_IMAGE = "shared", "per-image"
BATCHINGS = (SHARED, PER_IMAGE)
#: A :data:`PER_IMAGE` batch holds store paths of at most this many NAR bytes, unless it is one
#: job: a few processes per image, each building its layers on every core.
PER_IMAGE_BATCH_BYTES = 160 << 20


@dataclass(frozen=True)
class LayerJob:
    kind: str
    mtime: int
    #: The group's store paths (in plan order), or every closure path for the snapshotter.
    store_paths: tuple[str, ...] = ()
    copy_to_root: tuple[str, ...] = ()
    copy_to_root_mode: str = "symlink"
    account: Account | None = None
    perms: tuple[PermSpec, ...] = ()
    #: The snapshotter's layer is always SNAPSHOTTER_COMPRESSION at the default level, unchecked.
    compression: str = DEFAULT_COMPRESSION
    level: int | None = None
    #: Refuse executables for another machine than this architecture (None: let them in).
    machine: str | None = None

    def spec(self) -> tuple[LayerSpec, dict[str, str]]:
        """The native spec of the layer and the annotations of its descriptor."""
        if self.kind == SNAPSHOTTER:
            paths, roots = self.store_paths, self.copy_to_root
            return snapshotter_spec(paths, roots, self.copy_to_root_mode, self.mtime, self.account)
        if self.kind == ROOT:
            return root_spec(self.copy_to_root, self.copy_to_root_mode, self.mtime, self.account), {}
        return store_paths_spec(self.store_paths, self.mtime, self.perms), {}

    def history(self) -> str:
        """The image config's history line for this layer."""
        if self.kind == SNAPSHOTTER:
            return "layerforge nix-image: nix-snapshotter layer"
        if self.kind == ROOT:
            parts = ["copy-to-root"] if self.copy_to_root else []
            parts += [f"user {self.account.user}"] if self.account is not None else []
            return f"layerforge nix-image: {', '.join(parts)}"
        names = ", ".join(parse_store_path(p).name for p in self.store_paths[:3])
        more = f" and {len(self.store_paths) - 3} more" if len(self.store_paths) > 3 else ""
        return f"layerforge nix-image: {names}{more}"

    def cache_options(self) -> dict[str, object]:
        """Everything besides the store paths that shapes a store-path layer's bytes (the key
        of the local layer cache, see layer_cache.layer_key)."""
        return {
            "kind": "nix-store-paths",
            "mtime": self.mtime,
            "compression": self.compression,
            "level": self.level,
            "perms": [p.to_json() for p in self.perms],
            "machine": self.machine,
        }


@dataclass(frozen=True)
class LayerBatch:
    """Consecutive jobs of a plan that one ``nix-layer`` process builds, each into its own
    layer directory: a store-path job alone or with its small neighbours, or any other job
    alone."""

    jobs: tuple[LayerJob, ...]

    @property
    def outs(self) -> tuple[str, ...]:
        """The layer directories the batch writes, one per job in order."""
        if len(self.jobs) == 1:
            return (LAYER_DIR,)
        return tuple(f"{LAYER_DIR}{i + 1}" for i in range(len(self.jobs)))


def batch_jobs(
    jobs: Sequence[LayerJob], nar_size: Callable[[str], int], batching: str = SHARED, cut: Collection[int] = ()
) -> tuple[LayerBatch, ...]:
    """``jobs`` in order, as processes. :data:`SHARED`: a store-path job of
    :data:`ALONE_BYTES` or more (by ``nar_size`` of its paths) alone, consecutive smaller ones
    together up to a cut (see :func:`cuts_after`; and after each index of ``cut``, where the
    images of a shared plan cut: shared_cuts.py) or :data:`BATCH_BYTES`. :data:`PER_IMAGE`:
    consecutive store-path jobs together up to :data:`PER_IMAGE_BATCH_BYTES`. Every other job
    alone."""
    if batching not in BATCHINGS:
        raise ValueError(f"batching {batching!r} is not one of {', '.join(BATCHINGS)}")
    if cut and batching != SHARED:
        raise ValueError(f"cuts are for {SHARED} batches")
    shared = batching == SHARED
    alone, limit = (ALONE_BYTES, BATCH_BYTES) if shared else (PER_IMAGE_BATCH_BYTES, PER_IMAGE_BATCH_BYTES)
    batches: list[list[LayerJob]] = []
    open_batch: list[LayerJob] | None = None
    size = 0
    for index, job in enumerate(jobs):
        job_size = job_bytes(job, nar_size)
        if not small(job, job_size, alone):
            batches.append([job])
            open_batch = None
            continue
        if open_batch is None or size + job_size > limit:
            open_batch, size = [], 0
            batches.append(open_batch)
        open_batch.append(job)
        size += job_size
        if shared and (cuts_after(job) or index in cut):
            open_batch = None
    return tuple(LayerBatch(tuple(b)) for b in batches)


def job_bytes(job: LayerJob, nar_size: Callable[[str], int]) -> int:
    """The NAR bytes of the job's store paths."""
    return sum(nar_size(p) for p in job.store_paths)


def small(job: LayerJob, size: int, alone: int = ALONE_BYTES) -> bool:
    """Whether ``job`` (of ``size`` NAR bytes) may share a process: a store-path job of fewer
    than ``alone`` bytes (:data:`ALONE_BYTES` in :data:`SHARED` batches)."""
    return job.kind == STORE_PATHS and size < alone


def cuts_after(job: LayerJob) -> bool:
    """Whether a batch of small store-path jobs ends after ``job``: a property of the job
    alone (its first store path), so boundaries do not move with what precedes it."""
    digest = hashlib.sha256(job.store_paths[0].encode()).digest() if job.store_paths else b"\0"
    return digest[0] % CUT_EVERY == 0


def build_jobs(
    layout: OciLayout, jobs: Sequence[LayerJob], *, threads: int = 0, progress: ProgressCallback | None = None
) -> list[BuiltLayer]:
    """Build every job's layer into ``layout``'s blob store, in order; jobs with the same
    compression, level and machine (every job of one plan but the snapshotter's) build
    concurrently in one native call."""
    built: list[BuiltLayer] = []
    start = 0
    while start < len(jobs):
        head = jobs[start]
        end = start + 1
        while end < len(jobs) and _options(jobs[end]) == _options(head):
            end += 1
        specs = [job.spec() for job in jobs[start:end]]
        layers = build_layers(
            layout,
            [spec for spec, _ in specs],
            compression=head.compression,
            level=head.level,
            threads=threads,
            machine=head.machine,
            progress=progress,
        )
        for layer, (_, extra) in zip(layers, specs):
            built.append(replace(layer, descriptor=layer.descriptor.with_annotations(extra)))
        start = end
    return built


def _options(job: LayerJob) -> tuple[str, int | None, str | None]:
    return job.compression, job.level, job.machine
