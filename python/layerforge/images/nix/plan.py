"""The plan of a nix-image: everything decided before a byte is written.

``make_plan`` resolves the closure with real Nix, checks every input (store paths, budget,
groups, copy-to-root conflicts, entrypoint, base image) and decides the layers. The plan is
plain JSON, so that layer builds and assembly can run as separate, separately cached steps
(one Pants process per batch of layers), and re-reading it gives the same image. It hands out
its layers as typed jobs (:mod:`layer_jobs`) in batches, each with the ``nix-layer`` argv that
builds it (``nix-layer --job DOCUMENT``, :mod:`layer_job_document`) and the layer directories
it writes: the file's ``jobs`` list is all a build system reads besides ``version``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix import copy_to_root as ctr
from layerforge.images.nix.accounts import Account, add_account_entries, plan_user, resolve_perm_owners
from layerforge.images.nix.closure import Closure, Nix, PathInfo
from layerforge.images.nix.flake import installable
from layerforge.images.nix.image_files import read_layer_file
from layerforge.images.nix.image_view import ImageView, Stat
from layerforge.images.nix.layer_job_document import plan_job
from layerforge.images.nix.layer_jobs import (
    BATCHINGS,
    ROOT,
    SHARED,
    SNAPSHOTTER,
    SNAPSHOTTER_COMPRESSION,
    STORE_PATHS,
    LayerBatch,
    LayerJob,
    batch_jobs,
)
from layerforge.images.nix.layering import LayerGroup, plan_layers
from layerforge.images.nix.perms import PermSpec
from layerforge.images.nix.request import NixImageRequest, host_arch
from layerforge.images.nix.store_path import parse_store_path
from layerforge.layers.build import DEFAULT_COMPRESSION
from layerforge.layout.image_reader import FileIndex, StoredImage, list_files, read_image
from layerforge.model.canonical_json import canonical_json
from layerforge.model.config_merge import merge_runtime
from layerforge.model.image_config import RuntimeConfig
from layerforge.model.platform import arch_of_system, linux_platform
from layerforge.model.reference import validate_ref
from layerforge.option_flags import checked, checked_level

#: The plan file's schema; 2 added ``jobs``, 3 made each a batch of layers (``outs``), 5
#: added ``layerBatches`` and ``cutsAfter``. A reader refuses any other version.
PLAN_VERSION = 5


@dataclass(frozen=True)
class BaseInfo:
    digest: str
    ref: str | None
    layers: int


@dataclass(frozen=True)
class NixPlan:
    ref: str
    arch: str
    epoch: int
    closure: Closure
    layers: tuple[LayerGroup, ...]
    copy_to_root: tuple[str, ...] = ()
    copy_to_root_mode: str = "symlink"
    account: Account | None = None
    perms: tuple[PermSpec, ...] = ()
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    compression: str = DEFAULT_COMPRESSION
    level: int | None = None
    nix_snapshotter: bool = False
    sbom: bool = False
    source: str | None = None
    revision: str | None = None
    base: BaseInfo | None = None
    #: Refuse executables built for another machine than ``arch`` in the layers.
    check_arch: bool = True
    #: How the jobs are batched into processes (layer_jobs.BATCHINGS); not the image's bytes.
    batching: str = SHARED
    #: The jobs after which a batch ends because of the other images planned with this one
    #: (shared_cuts.py); not the image's bytes.
    cuts: tuple[int, ...] = ()

    @property
    def machine(self) -> str | None:
        """The architecture the layers' executables are checked against, if they are."""
        return self.arch if self.check_arch else None

    @property
    def has_root_layer(self) -> bool:
        """A root layer holds the copy-to-root entries and the account's files."""
        return bool(self.copy_to_root) or self.account is not None

    def layer_jobs(self) -> tuple[LayerJob, ...]:
        """The image's layers above the base, in order: the store-path groups then the root
        layer, or nix-snapshotter's single layer."""
        if self.nix_snapshotter:
            return (
                LayerJob(
                    SNAPSHOTTER,
                    self.epoch,
                    store_paths=tuple(self.closure.paths),
                    copy_to_root=self.copy_to_root,
                    copy_to_root_mode=self.copy_to_root_mode,
                    account=self.account,
                    compression=SNAPSHOTTER_COMPRESSION,
                ),
            )
        layer = LayerJob(STORE_PATHS, self.epoch, compression=self.compression, level=self.level, machine=self.machine)
        jobs = [replace(layer, store_paths=g.paths, perms=self.perms) for g in self.layers]
        if self.has_root_layer:
            jobs.append(
                replace(
                    layer,
                    kind=ROOT,
                    copy_to_root=self.copy_to_root,
                    copy_to_root_mode=self.copy_to_root_mode,
                    account=self.account,
                )
            )
        return tuple(jobs)

    def layer_batches(self) -> tuple[LayerBatch, ...]:
        """The layer jobs as a build system runs them: small store-path layers together."""
        return batch_jobs(self.layer_jobs(), self.nar_size, self.batching, frozenset(self.cuts))

    def nar_size(self, path: str) -> int:
        return self.closure.infos[path].nar_size

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "ref": self.ref,
            "arch": self.arch,
            "checkArch": self.check_arch,
            "epoch": self.epoch,
            "roots": list(self.closure.roots),
            "closure": {
                p: {
                    "narHash": i.nar_hash,
                    "narSize": i.nar_size,
                    "references": list(i.references),
                    "deriver": i.deriver,
                }
                for p, i in sorted(self.closure.infos.items())
            },
            "layers": [{"kind": g.kind, "paths": list(g.paths)} for g in self.layers],
            "jobs": [plan_job(batch) for batch in self.layer_batches()],
            "layerBatches": self.batching,
            "cutsAfter": list(self.cuts),
            "copyToRoot": list(self.copy_to_root),
            "copyToRootMode": self.copy_to_root_mode,
            "account": None if self.account is None else self.account.to_json(),
            "perms": [p.to_json() for p in self.perms],
            "runtime": self.runtime.to_json(),
            "compression": self.compression,
            "level": self.level,
            "nixSnapshotter": self.nix_snapshotter,
            "sbom": self.sbom,
            "source": self.source,
            "revision": self.revision,
            "base": None
            if self.base is None
            else {"digest": self.base.digest, "ref": self.base.ref, "layers": self.base.layers},
        }

    def dumps(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NixPlan:
        if d.get("version") != PLAN_VERSION:
            raise LayerforgeError(
                f"nix-image plan version {d.get('version')!r} is not {PLAN_VERSION} (made by another layerforge)"
            )
        infos = {
            p: PathInfo(p, v["narHash"], int(v["narSize"]), tuple(v["references"]), v.get("deriver"))
            for p, v in d["closure"].items()
        }
        base = d.get("base")
        return cls(
            ref=d["ref"],
            arch=d["arch"],
            check_arch=bool(d["checkArch"]),
            epoch=int(d["epoch"]),
            closure=Closure(roots=tuple(d["roots"]), infos=infos),
            layers=tuple(LayerGroup(tuple(g["paths"]), g["kind"]) for g in d["layers"]),
            copy_to_root=tuple(d["copyToRoot"]),
            copy_to_root_mode=d["copyToRootMode"],
            account=None if d.get("account") is None else Account.from_json(d["account"]),
            perms=tuple(PermSpec.from_json(p) for p in d["perms"]),
            runtime=RuntimeConfig.from_json(d["runtime"]),
            compression=d["compression"],
            level=d["level"],
            nix_snapshotter=bool(d["nixSnapshotter"]),
            sbom=bool(d["sbom"]),
            source=d.get("source"),
            revision=d.get("revision"),
            base=None if base is None else BaseInfo(base["digest"], base.get("ref"), int(base["layers"])),
            batching=_batching(d["layerBatches"]),
            cuts=_cuts(d["cutsAfter"]),
        )

    @classmethod
    def loads(cls, data: bytes, name: str = "the plan") -> NixPlan:
        """The plan in ``data`` (the file ``name``); its jobs must be the ones it implies, since
        the layers were built from them."""
        try:
            d = json.loads(data)
            plan = cls.from_json(d)
        except LayerforgeError as e:
            raise LayerforgeError(f"{name}: {e}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise LayerforgeError(f"{name}: unreadable nix-image plan ({type(e).__name__}: {e})") from None
        if d.get("jobs") != [plan_job(batch) for batch in plan.layer_batches()]:
            raise LayerforgeError(f"{name}: the plan's jobs are not the layers it plans")
        return plan


def _batching(value: object) -> str:
    if value not in BATCHINGS:
        raise LayerforgeError(f"layerBatches {value!r} is not one of {', '.join(BATCHINGS)}")
    return str(value)


def _cuts(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(i) is int and i >= 0 for i in value) or value != sorted(set(value)):
        raise LayerforgeError(f"cutsAfter {value!r} is not a sorted list of job indices")
    return tuple(value)


#: The options that say where the closure comes from; exactly one is given.
SOURCES = ("--nix-file", "--flake", "--derivation", "--store-path")


def _source(req: NixImageRequest) -> str:
    given = [
        option
        for option, value in zip(
            SOURCES, (req.nix_file is not None, req.flake is not None, req.derivations, req.store_paths)
        )
        if value
    ]
    if len(given) > 1:
        raise UsageError(given[1], f"give one of {', '.join(SOURCES)}; {given[0]} is given too")
    if not given:
        raise UsageError(
            "--store-path", "give --nix-file FILE, --flake REF, --derivation DRV or at least one --store-path"
        )
    return given[0]


def resolve_roots(req: NixImageRequest, nix: Nix) -> list[str]:
    source = _source(req)
    if source != "--nix-file" and (req.attr or req.argstrs):
        raise UsageError("--attr" if req.attr else "--argstr", "needs --nix-file")
    if source == "--nix-file":
        assert req.nix_file is not None
        return nix.build(req.nix_file, req.attr, req.argstrs, req.system)
    if source == "--flake":
        assert req.flake is not None
        derivation = nix.flake_derivation(installable(req.flake, Path.cwd()), system=req.system)
        return nix.realise([derivation], "--flake")
    if source == "--derivation":
        return nix.realise(req.derivations)
    paths = [parse_store_path(p).path for p in req.store_paths]
    nix.ensure_present(paths, "--store-path")
    return paths


def resolve_copy_to_root(req: NixImageRequest, nix: Nix) -> list[str]:
    """Explicit copy-to-root store paths (realised if missing) plus the outputs of
    ``--copy-to-root-attr``s (of ``--nix-file``, or flake references with ``--flake``) and
    ``--copy-to-root-derivation``s."""
    paths = [parse_store_path(p, "--copy-to-root").path for p in req.copy_to_root]
    nix.ensure_present(paths, "--copy-to-root")
    option = "--copy-to-root-attr"
    for attr in req.copy_to_root_attrs:
        if req.nix_file is not None:
            paths += nix.build(req.nix_file, attr, req.argstrs, req.system)
        elif req.flake is not None:
            derivation = nix.flake_derivation(installable(attr, Path.cwd(), option), option, req.system)
            paths += nix.realise([derivation], option)
        else:
            raise UsageError(option, "needs --nix-file or --flake")
    paths += nix.realise(req.copy_to_root_derivations, "--copy-to-root-derivation")
    return sorted(set(paths))


def _check_request(req: NixImageRequest) -> None:
    validate_ref(req.ref)
    if req.system is not None:
        arch_of_system(req.system)  # with --derivation or --store-path, it names the platform only
        if any(name == "system" for name, _ in req.argstrs):
            raise UsageError("--argstr", "system is given by --system; give it once")
    checked("--max-layers", "nix.max_layers", req.max_layers)
    checked("--layering", "nix.layering", req.layering)
    checked("--compression", "layer.compression", req.compression)
    checked_level("--level", req.compression, req.level)
    for p in req.copy_to_root:
        parse_store_path(p, "--copy-to-root")
    for g in req.layer_groups:
        for p in g:
            parse_store_path(p, "--layer-group")


def make_plan(req: NixImageRequest, nix: Nix, epoch: int) -> tuple[NixPlan, StoredImage | None]:
    """Resolve and check everything; nothing is written."""
    _check_request(req)
    arch = req.arch or (arch_of_system(req.system) if req.system is not None else host_arch())
    linux_platform(arch)
    roots = resolve_roots(req, nix)
    copy_to_root = resolve_copy_to_root(req, nix)
    closure = nix.closure(sorted({*roots, *copy_to_root}))

    base = None
    if req.from_image is not None:
        base = read_image(req.from_image, platform=f"linux/{arch}")
        if base.config.platform.architecture != arch:
            raise UsageError(
                "--from-image", f"{req.from_image} is {base.config.platform}, the image being built is linux/{arch}"
            )
    base_layers = len(base.manifest.layers) if base else 0
    root = ctr.plan_root(copy_to_root, req.copy_to_root_mode)
    base_files = _BaseFiles(base) if base is not None else None
    user = plan_user(req.runtime.user, req.uid, req.gid, image_view(closure, root, base_files))
    account = user.account if user is not None and user.create else None
    if account is not None:
        add_account_entries(root, account)
    if req.nix_snapshotter:
        layers: list[LayerGroup] = []
        if base_layers + 1 > req.max_layers:
            raise UsageError("--max-layers", f"{req.max_layers} leaves no room above {base_layers} base layers")
    else:
        budget = req.max_layers - base_layers - (1 if root else 0)
        if budget < 1:
            raise UsageError(
                "--max-layers",
                f"{req.max_layers} leaves no room for the closure above {base_layers} base layers"
                + (" and the root layer" if root else ""),
            )
        layers = plan_layers(closure, strategy=req.layering, budget=budget, groups=req.layer_groups)

    runtime = merge_runtime(base.config.config, req.runtime, f"--from-image {req.from_image}") if base else req.runtime
    _check_entrypoint(image_view(closure, root, base_files), runtime)
    plan = NixPlan(
        ref=req.ref,
        arch=arch,
        check_arch=not req.allow_foreign_executables,
        epoch=epoch,
        closure=closure,
        layers=tuple(layers),
        copy_to_root=tuple(copy_to_root),
        copy_to_root_mode=req.copy_to_root_mode,
        account=account,
        perms=resolve_perm_owners(req.perms, user),
        runtime=runtime,
        compression=req.compression,
        level=req.level,
        nix_snapshotter=req.nix_snapshotter,
        sbom=req.sbom,
        source=req.source,
        revision=req.revision,
        base=None if base is None else BaseInfo(base.descriptor.digest, base.ref, base_layers),
    )
    return plan, base


class _BaseFiles:
    """A base image's files, listed on first use (only entrypoint and account checks need them)."""

    def __init__(self, image: StoredImage) -> None:
        self.image = image
        self.files: FileIndex | None = None

    def lookup(self, path: str) -> Stat:
        if self.files is None:
            self.files = list_files(self.image)
        return self.files.get(path)

    def read(self, path: str) -> bytes | None:
        return read_layer_file(self.image, path)


def image_view(closure: Closure, root: dict[str, ctr.RootEntry], base: _BaseFiles | None) -> ImageView:
    """The image as it will be: closure, root layer entries and the base image's files."""
    if base is None:
        return ImageView(set(closure.infos), root)
    return ImageView(set(closure.infos), root, base.lookup, base.read)


def _check_entrypoint(view: ImageView, runtime: RuntimeConfig) -> None:
    argv = list(runtime.entrypoint or ()) + list(runtime.cmd or ())
    if not argv:
        return
    option = "--entrypoint" if runtime.entrypoint else "--cmd"
    try:
        view.find_program(argv[0], runtime.env, runtime.working_dir)
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None
