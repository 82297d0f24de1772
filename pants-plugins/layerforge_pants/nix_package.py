"""`pants package` for nix_oci_image: a plan process, one process per layer, an assembly
process. The unit of caching is the layer: a layer process's argv holds only its own store
paths and options, so changing one store path re-runs only that layer (plus plan and assembly).
Store paths are read from the host's store: immutable and named by their inputs' hash, they
make a sound cache key."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, DigestContents, MergeDigests
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule

from layerforge_pants.dependency_files import dependency_files
from layerforge_pants.image_dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.image_package import ImageFieldSet, config_argv, package_with
from layerforge_pants.nix_target import (
    ImageArchField,
    NixArgstrsField,
    NixAttrField,
    NixCopyToRootAttrsField,
    NixCopyToRootField,
    NixCopyToRootModeField,
    NixFileField,
    NixLayerGroupsField,
    NixLayeringField,
    NixMaxLayersField,
    NixPermsField,
    NixSbomField,
    NixSnapshotterField,
    NixStorePathsField,
)
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.target_types import (
    BaseImageField,
    CmdField,
    CompressionField,
    CompressionLevelField,
    EntrypointField,
    EnvField,
    ExposedPortsField,
    ImageRevisionAnnotationField,
    ImageSourceAnnotationField,
    LabelsField,
    StopSignalField,
    UserField,
    VolumesField,
    WorkdirField,
)
from layerforge_pants.tool import LayerforgeProcess

PLAN = "plan.json"


@dataclass(frozen=True)
class NixOciImageFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (NixMaxLayersField,)

    nix_file: NixFileField
    attr: NixAttrField
    argstrs: NixArgstrsField
    store_paths: NixStorePathsField
    layering: NixLayeringField
    max_layers: NixMaxLayersField
    layer_groups: NixLayerGroupsField
    copy_to_root: NixCopyToRootField
    copy_to_root_attrs: NixCopyToRootAttrsField
    copy_to_root_mode: NixCopyToRootModeField
    perms: NixPermsField
    sbom: NixSbomField
    nix_snapshotter: NixSnapshotterField
    base_image: BaseImageField
    arch: ImageArchField
    compression: CompressionField
    compression_level: CompressionLevelField
    entrypoint: EntrypointField
    cmd: CmdField
    env: EnvField
    workdir: WorkdirField
    user: UserField
    labels: LabelsField
    exposed_ports: ExposedPortsField
    volumes: VolumesField
    stop_signal: StopSignalField
    image_source: ImageSourceAnnotationField
    image_revision: ImageRevisionAnnotationField

    def plan_argv(self, ref: str, nix_file: str | None) -> list[str]:
        argv = ["nix-plan", "--out", PLAN, "--tag", ref, "--layering", self.layering.value or "popularity"]
        argv += ["--max-layers", str(self.max_layers.value), "--compression", self.compression.value or "gzip"]
        if self.compression_level.value is not None:
            argv += ["--level", str(self.compression_level.value)]
        if self.arch.value:
            argv += ["--arch", self.arch.value]
        if self.sbom.value:
            argv.append("--sbom")
        if self.nix_snapshotter.value:
            argv.append("--nix-snapshotter")
        for p in self.copy_to_root.value or ():
            argv += ["--copy-to-root", p]
        argv += ["--copy-to-root-mode", self.copy_to_root_mode.value or "symlink"]
        for r in self.perms.value or ():
            argv += ["--perms", r]
        for g in self.layer_groups.value:
            argv += ["--layer-group", *g]
        if self.entrypoint.value is not None:
            argv += ["--entrypoint", json.dumps(list(self.entrypoint.value))]
        argv += config_argv(self.cmd, self.env, self.labels)
        for flag, value in (
            ("--workdir", self.workdir.value),
            ("--user", self.user.value),
            ("--stop-signal", self.stop_signal.value),
            ("--source", self.image_source.value),
            ("--revision", self.image_revision.value),
        ):
            if value:
                argv += [flag, value]
        for p in self.exposed_ports.value or ():
            argv += ["--expose", p]
        for v in self.volumes.value or ():
            argv += ["--volume", v]
        if nix_file is not None:
            argv += ["--nix-file", nix_file]
            if self.attr.value:
                argv += ["-A", self.attr.value]
            for k, v in sorted((self.argstrs.value or {}).items()):
                argv += ["--argstr", k, v]
            for a in self.copy_to_root_attrs.value or ():
                argv += ["--copy-to-root-attr", a]
        else:
            for p in self.store_paths.value or ():
                argv += ["--store-path", p]
        return argv


def layer_head(plan: dict[str, object], *, compressed: bool = True) -> list[str]:
    """``nix-layer`` with the plan's mtime and, unless the layer is the snapshotter's
    uncompressed one, its compression."""
    argv = ["nix-layer", "--out", "layer", "--mtime", str(plan["epoch"])]
    if compressed:
        argv += ["--compression", str(plan["compression"])]
        if plan.get("level") is not None:
            argv += ["--level", str(plan["level"])]
    return argv


def copy_to_root_argv(plan: dict[str, object]) -> list[str]:
    argv = [a for p in plan["copyToRoot"] for a in ("--copy-to-root", p)]  # type: ignore[attr-defined]
    return [*argv, "--copy-to-root-mode", str(plan["copyToRootMode"])]


def layer_argv(plan: dict[str, object], paths: list[str]) -> list[str]:
    argv = layer_head(plan)
    for perm in plan.get("perms") or []:  # type: ignore[union-attr]
        pattern, mode, uid, gid = perm
        rule = f"{pattern}=" + (f"{int(mode):04o}" if mode is not None else "")
        if uid is not None:
            rule += f":{uid}:{gid if gid is not None else uid}"
        argv += ["--perms", rule]
    for p in paths:
        argv += ["--store-path", p]
    return argv


@rule(desc="Package nix_oci_image")
async def package_nix_oci_image(field_set: NixOciImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names = field_set.names(tool)
    base_digest, from_image = EMPTY_DIGEST, ()
    if field_set.base_image.value:
        base = await Get(
            ImageDependency,
            ImageDependencyRequest(
                field_set.address, "base_image", field_set.base_image.value, "base", allowed=("nix_oci_image",)
            ),
        )
        base_digest, from_image = base.digest, ("--from-image", base.layout_ref)
    sources = await dependency_files(field_set.address, field_set.nix_file)
    nix_file = field_set.nix_file.file_path if field_set.nix_file.value else None
    plan_input = await Get(Digest, MergeDigests([sources.digest, base_digest]))
    planned = await Get(
        ProcessResult,
        LayerforgeProcess(
            argv=(*field_set.plan_argv(names.ref, nix_file), *from_image),
            description=f"Plan the layers of {field_set.address}",
            input_digest=plan_input,
            output_files=(PLAN,),
        ),
    )
    (plan_file,) = await Get(DigestContents, Digest, planned.output_digest)
    plan = json.loads(plan_file.content)

    layer_argvs: list[list[str]] = []
    if plan["nixSnapshotter"]:
        store_paths = [a for p in sorted(plan["closure"]) for a in ("--store-path", p)]
        layer_argvs.append(
            [*layer_head(plan, compressed=False), "--snapshotter", *store_paths, *copy_to_root_argv(plan)]
        )
    else:
        layer_argvs += [layer_argv(plan, group["paths"]) for group in plan["layers"]]
        if plan["copyToRoot"]:
            layer_argvs.append([*layer_head(plan), *copy_to_root_argv(plan)])
    layers = await MultiGet(
        Get(
            ProcessResult,
            LayerforgeProcess(
                argv=tuple(argv),
                description=f"Build layer {i + 1}/{len(layer_argvs)} of {field_set.address}",
                input_digest=EMPTY_DIGEST,
                output_directories=("layer",),
            ),
        )
        for i, argv in enumerate(layer_argvs)
    )
    prefixed = await MultiGet(Get(Digest, AddPrefix(r.output_digest, f"l{i}")) for i, r in enumerate(layers))
    assemble_input = await Get(Digest, MergeDigests([planned.output_digest, base_digest, *prefixed]))
    layout = field_set.layout_dir()
    argv = ["nix-assemble", "--plan", PLAN, "--out", layout, *from_image]
    argv += [a for i in range(len(layers)) for a in ("--layer-dir", f"l{i}/layer")]
    return await package_with(argv, f"Assemble the image of {field_set.address}", assemble_input, layout, names)


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, NixOciImageFieldSet)]
