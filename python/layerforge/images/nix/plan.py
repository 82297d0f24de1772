"""The plan of a nix-image: everything decided before a byte is written.

``make_plan`` resolves the closure with real Nix, checks every input (store paths, budget,
groups, copy-to-root conflicts, entrypoint, base image) and decides the layers. The plan is
plain JSON, so that layer builds and assembly can run as separate, separately cached steps
(one Pants process per layer), and re-reading it gives the same image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nix import copy_to_root as ctr
from layerforge.images.nix.closure import Closure, Nix, PathInfo
from layerforge.images.nix.image_view import ImageView, Stat
from layerforge.images.nix.layering import LayerGroup, plan_layers
from layerforge.images.nix.request import LAYER_LIMIT, NixImageRequest, PermSpec, host_arch
from layerforge.images.nix.store_path import parse_store_path
from layerforge.layout.image_reader import StoredImage, list_files, read_image
from layerforge.model.canonical_json import canonical_json
from layerforge.model.config_merge import merge_runtime
from layerforge.model.image_config import RuntimeConfig
from layerforge.model.platform import linux_platform
from layerforge.model.reference import validate_ref

PLAN_VERSION = 1


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
    perms: tuple[PermSpec, ...] = ()
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    compression: str = "gzip"
    level: int | None = None
    nix_snapshotter: bool = False
    sbom: bool = False
    source: str | None = None
    revision: str | None = None
    base: BaseInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "ref": self.ref,
            "arch": self.arch,
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
            "copyToRoot": list(self.copy_to_root),
            "copyToRootMode": self.copy_to_root_mode,
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
            raise LayerforgeError(f"nix-image plan version {d.get('version')!r} is not {PLAN_VERSION}")
        infos = {
            p: PathInfo(p, v["narHash"], int(v["narSize"]), tuple(v["references"]), v.get("deriver"))
            for p, v in d["closure"].items()
        }
        base = d.get("base")
        return cls(
            ref=d["ref"],
            arch=d["arch"],
            epoch=int(d["epoch"]),
            closure=Closure(roots=tuple(d["roots"]), infos=infos),
            layers=tuple(LayerGroup(tuple(g["paths"]), g["kind"]) for g in d["layers"]),
            copy_to_root=tuple(d["copyToRoot"]),
            copy_to_root_mode=d["copyToRootMode"],
            perms=tuple(PermSpec.from_json(p) for p in d["perms"]),
            runtime=RuntimeConfig.from_json(d["runtime"]),
            compression=d["compression"],
            level=d["level"],
            nix_snapshotter=bool(d["nixSnapshotter"]),
            sbom=bool(d["sbom"]),
            source=d.get("source"),
            revision=d.get("revision"),
            base=None if base is None else BaseInfo(base["digest"], base.get("ref"), int(base["layers"])),
        )

    @classmethod
    def loads(cls, data: bytes) -> NixPlan:
        try:
            return cls.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError) as e:
            raise LayerforgeError(f"unreadable nix-image plan: {e}") from None


def resolve_copy_to_root(req: NixImageRequest, nix: Nix) -> list[str]:
    """Explicit copy-to-root store paths plus the outputs of ``--copy-to-root-attr``s."""
    paths = [parse_store_path(p, "--copy-to-root").path for p in req.copy_to_root]
    if req.copy_to_root_attrs:
        if req.nix_file is None:
            raise UsageError("--copy-to-root-attr", "needs --nix-file")
        for attr in req.copy_to_root_attrs:
            paths += nix.build(req.nix_file, attr, req.argstrs)
    return sorted(set(paths))


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


def make_plan(req: NixImageRequest, nix: Nix, epoch: int) -> tuple[NixPlan, StoredImage | None]:
    """Resolve and check everything; nothing is written."""
    _check_request(req)
    arch = req.arch or host_arch()
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

    runtime = merge_runtime(base.config.config, req.runtime) if base else req.runtime
    _check_entrypoint(closure, root, base, runtime)
    plan = NixPlan(
        ref=req.ref,
        arch=arch,
        epoch=epoch,
        closure=closure,
        layers=tuple(layers),
        copy_to_root=tuple(copy_to_root),
        copy_to_root_mode=req.copy_to_root_mode,
        perms=req.perms,
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
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None
