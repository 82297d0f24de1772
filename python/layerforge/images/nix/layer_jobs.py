"""The layers of a planned nix-image as typed jobs: one per store-path group, the root layer
(copy-to-root entries and the account's files) and nix-snapshotter's single layer.

A job holds everything that decides its layer's bytes. It gives the ``nix-layer`` argv that
builds it (written into the plan for build systems: Pants runs one process per job, with that
argv as the whole of its cache key) and the native spec ``nix-image`` builds in-process;
``nix-layer`` reads its argv back into the same job (:func:`job_from_layer_args`). The
assembler's layer count and history come from the same list, in the same order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace

from layerforge._native import LayerSpec
from layerforge.errors import UsageError
from layerforge.images.nix.accounts import Account
from layerforge.images.nix.layer_specs import root_spec, snapshotter_spec, store_paths_spec
from layerforge.images.nix.perms import PermSpec, parse_perms
from layerforge.images.nix.store_path import parse_store_path
from layerforge.layers.build import BuiltLayer, build_layers
from layerforge.layout.oci_layout import OciLayout
from layerforge.progress import ProgressCallback

STORE_PATHS, ROOT, SNAPSHOTTER = "store-paths", "root", "snapshotter"
KINDS = (STORE_PATHS, ROOT, SNAPSHOTTER)
#: The directory a job's ``nix-layer`` writes, relative to where it runs.
LAYER_DIR = "layer"


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
    #: The snapshotter's layer is always gzip (``nix-layer --snapshotter`` ignores the option).
    compression: str = "gzip"
    level: int | None = None
    #: Refuse executables for another machine than this architecture (None: let them in).
    machine: str | None = None

    def argv(self, out: str = LAYER_DIR) -> tuple[str, ...]:
        """``layerforge nix-layer`` building this job's layer into ``out``."""
        argv = ["nix-layer", "--out", out, "--mtime", str(self.mtime)]
        if self.kind != SNAPSHOTTER:
            if self.machine is not None:
                argv += ["--check-arch", self.machine]
            argv += ["--compression", self.compression]
        if self.level is not None:
            argv += ["--level", str(self.level)]
        if self.kind == STORE_PATHS:
            argv += [a for p in self.perms for a in ("--perms", p.to_arg())]
            return (*argv, *(a for p in self.store_paths for a in ("--store-path", p)))
        if self.kind == SNAPSHOTTER:
            argv += ["--snapshotter", *(a for p in self.store_paths for a in ("--store-path", p))]
        argv += [a for p in self.copy_to_root for a in ("--copy-to-root", p)]
        if self.account is not None:
            argv += ["--account", self.account.to_arg()]
        return (*argv, "--copy-to-root-mode", self.copy_to_root_mode)

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

    def to_json(self) -> dict[str, object]:
        """The job as the plan file holds it: what a build system needs to run it."""
        return {"kind": self.kind, "out": LAYER_DIR, "argv": list(self.argv())}


def job_from_layer_args(args: argparse.Namespace) -> LayerJob:
    """The job ``nix-layer``'s arguments describe (its :meth:`LayerJob.argv` read back)."""
    paths = tuple(parse_store_path(p).path for p in args.store_path)
    roots = tuple(parse_store_path(p, "--copy-to-root").path for p in args.copy_to_root)
    account = Account.from_arg(args.account) if args.account else None
    perms = parse_perms(args.perms, names=False)
    if args.snapshotter:
        kind = SNAPSHOTTER
    elif paths and not (roots or account):
        kind = STORE_PATHS
    elif (roots or account) and not paths:
        kind = ROOT
    else:
        raise UsageError(
            "--store-path", "give the store paths of one layer, or the root layer's --copy-to-root paths, not both"
        )
    if perms and kind != STORE_PATHS:
        raise UsageError("--perms", "applies to layers of --store-path paths only")
    snapshotter = kind == SNAPSHOTTER
    return LayerJob(
        kind=kind,
        mtime=args.mtime,
        store_paths=paths,
        copy_to_root=roots,
        copy_to_root_mode=args.copy_to_root_mode,
        account=account,
        perms=perms,
        compression="gzip" if snapshotter else args.compression,
        level=args.level,
        machine=None if snapshotter else args.check_arch,
    )


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
