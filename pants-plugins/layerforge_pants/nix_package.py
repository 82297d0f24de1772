"""`pants package` for nix_oci_image: an evaluation (uncached, see nix_eval), a plan process,
one process per layer, an assembly process. The plan is keyed by the derivations the
evaluation printed (or the target's store paths), never by the Nix file's text: what Nix read
is in them. The unit of caching is the layer: a layer process's argv holds only its own store
paths and options, so changing one store path re-runs only that layer (plus plan and assembly).
Store paths are read from the host's store: immutable and named by their inputs' hash, they
make a sound cache key; a layer whose paths this machine lacks realises them first."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, DigestContents, MergeDigests, PathGlobs, Paths, Snapshot
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import InvalidFieldException
from pants.engine.unions import UnionRule

from layerforge_pants.dependency_files import dependency_files
from layerforge_pants.image_dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.image_package import ImageFieldSet, config_argv, package_with
from layerforge_pants.nix_eval import Derivations, NixEvaluation
from layerforge_pants.nix_flake import FlakeRef, parse_flake_ref
from layerforge_pants.nix_plan import PLAN, planned_layers
from layerforge_pants.nix_target import (
    ImageArchField,
    NixAllowForeignExecutablesField,
    NixArgstrsField,
    NixAttrField,
    NixCopyToRootAttrsField,
    NixCopyToRootField,
    NixCopyToRootModeField,
    NixFileField,
    NixFlakeField,
    NixFlakeSourcesField,
    NixGidField,
    NixLayerGroupsField,
    NixLayeringField,
    NixMaxLayersField,
    NixPermsField,
    NixSbomField,
    NixSnapshotterField,
    NixStorePathsField,
    NixSystemField,
    NixUidField,
)
from layerforge_pants.remote_target import RemoteOciImageTarget
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
    ImageTagsField,
    LabelsField,
    StopSignalField,
    UserField,
    VolumesField,
    WorkdirField,
)
from layerforge_pants.tool import LayerforgeProcess, checked

#: What a layerforge command says when it needs a layer blob a shallow layout lacks.
SHALLOW_MISSING = b"is a shallow layout without blob"
#: Options of `layerforge nix-plan` / `nix-layer` and the fields they come from.
PLAN_OPTION_FIELDS = (
    ("--tag", ImageTagsField),
    ("--system", NixSystemField),
    ("--arch", ImageArchField),
    ("--layering", NixLayeringField),
    ("--max-layers", NixMaxLayersField),
    ("--layer-group", NixLayerGroupsField),
    ("--copy-to-root-mode", NixCopyToRootModeField),
    ("--perms", NixPermsField),
    ("--from-image", BaseImageField),
    ("--entrypoint", EntrypointField),
    ("--cmd", CmdField),
    ("--env", EnvField),
    ("--workdir", WorkdirField),
    ("--user", UserField),
    ("--uid", NixUidField),
    ("--gid", NixGidField),
    ("--label", LabelsField),
    ("--expose", ExposedPortsField),
    ("--volume", VolumesField),
    ("--stop-signal", StopSignalField),
    ("--level", CompressionLevelField),
)


@dataclass(frozen=True)
class NixOciImageFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (NixMaxLayersField,)

    nix_file: NixFileField
    attr: NixAttrField
    argstrs: NixArgstrsField
    flake: NixFlakeField
    flake_sources: NixFlakeSourcesField
    store_paths: NixStorePathsField
    layering: NixLayeringField
    max_layers: NixMaxLayersField
    layer_groups: NixLayerGroupsField
    copy_to_root: NixCopyToRootField
    copy_to_root_attrs: NixCopyToRootAttrsField
    copy_to_root_mode: NixCopyToRootModeField
    perms: NixPermsField
    uid: NixUidField
    gid: NixGidField
    sbom: NixSbomField
    nix_snapshotter: NixSnapshotterField
    base_image: BaseImageField
    system: NixSystemField
    arch: ImageArchField
    allow_foreign_executables: NixAllowForeignExecutablesField
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

    @property
    def source_field(self) -> str:
        """The field the closure comes from (named in errors about it)."""
        if self.nix_file.value:
            return self.nix_file.alias
        return self.flake.alias if self.flake.value else self.store_paths.alias

    def error_fields(self) -> dict[str, str]:
        """layerforge's options -> the fields they come from, for errors of plan and layers."""
        return {
            **{option: field.alias for option, field in PLAN_OPTION_FIELDS},
            "--derivation": self.source_field,
            "--store-path": self.source_field,
            "--copy-to-root-derivation": self.copy_to_root_attrs.alias,
            "--copy-to-root": (self.copy_to_root if self.copy_to_root.value else self.copy_to_root_attrs).alias,
        }

    def plan_argv(self, ref: str, derivations: tuple[str, ...], copy_to_root: tuple[str, ...]) -> list[str]:
        argv = ["nix-plan", "--out", PLAN, "--tag", ref, "--layering", self.layering.value or "popularity"]
        argv += ["--max-layers", str(self.max_layers.value), "--compression", self.compression.value or "gzip"]
        if self.compression_level.value is not None:
            argv += ["--level", str(self.compression_level.value)]
        if self.system.value:
            argv += ["--system", self.system.value]
        if self.arch.value:
            argv += ["--arch", self.arch.value]
        if self.allow_foreign_executables.value:
            argv.append("--allow-foreign-executables")
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
        for flag, number in (("--uid", self.uid.value), ("--gid", self.gid.value)):
            if number is not None:
                argv += [flag, str(number)]
        for p in self.exposed_ports.value or ():
            argv += ["--expose", p]
        for v in self.volumes.value or ():
            argv += ["--volume", v]
        argv += [a for d in derivations for a in ("--derivation", d)]
        argv += [a for d in copy_to_root for a in ("--copy-to-root-derivation", d)]
        argv += [a for p in self.store_paths.value or () for a in ("--store-path", p)]
        return argv


async def flake_files(field_set: NixOciImageFieldSet, refs: tuple[FlakeRef, ...]) -> Snapshot:
    """The flake(s)' files: `flake_sources`, or every file under each flake's directory;
    plus files from dependencies. Each flake.nix must be there, and its flake.lock if it has one."""
    if field_set.flake_sources.value is not None:
        snapshot = await dependency_files(field_set.address, field_set.flake_sources)
        field = field_set.flake_sources.alias
    else:
        dirs = sorted({r.directory for r in refs})
        own = await Get(Snapshot, PathGlobs(["**/*" if d == "." else f"{d}/**/*" for d in dirs]))
        deps = await dependency_files(field_set.address)
        snapshot = await Get(Snapshot, MergeDigests([own.digest, deps.digest]))
        field = field_set.flake.alias
    locks = await Get(Paths, PathGlobs([os.path.normpath(f"{r.directory}/flake.lock") for r in refs]))
    for ref in refs:
        for name in ("flake.nix", "flake.lock"):
            path = os.path.normpath(f"{ref.directory}/{name}")
            if path not in snapshot.files and (name == "flake.nix" or path in locks.files):
                raise InvalidFieldException(
                    f"The `{field}` field of {field_set.address} does not give {path}, which the flake in "
                    f"{ref.directory}/ needs."
                )
    return snapshot


async def evaluate_derivations(field_set: NixOciImageFieldSet) -> tuple[Derivations, Derivations]:
    """The derivations of the image's closure and of its copy-to-root attrs, evaluated now."""
    address, attrs = field_set.address, tuple(field_set.copy_to_root_attrs.value or ())
    system = field_set.system.value
    none = Derivations(())
    if field_set.nix_file.value:
        sources = await dependency_files(address, field_set.nix_file)
        path, argstrs = field_set.nix_file.file_path, tuple((field_set.argstrs.value or {}).items())

        def evaluation(own: tuple[str, ...], field: str) -> NixEvaluation:
            return NixEvaluation.nix_file(
                path, attrs=own, argstrs=argstrs, digest=sources.digest, address=address, field=field, system=system
            )

        root = evaluation((field_set.attr.value,) if field_set.attr.value else (), "nix_file")
        if not attrs:
            return await Get(Derivations, NixEvaluation, root), none
        ctr = evaluation(attrs, "copy_to_root_attrs")
        return await MultiGet(Get(Derivations, NixEvaluation, root), Get(Derivations, NixEvaluation, ctr))
    if not field_set.flake.value:
        return none, none
    ref = parse_flake_ref(field_set.flake.value, address, "flake")
    ctr_refs = tuple(parse_flake_ref(a, address, "copy_to_root_attrs") for a in attrs)
    sources = await flake_files(field_set, (ref, *ctr_refs))
    evaluations = [NixEvaluation.flake(ref, sources.digest, address, "flake", system)]
    evaluations += [NixEvaluation.flake(r, sources.digest, address, "copy_to_root_attrs", system) for r in ctr_refs]
    results = await MultiGet(Get(Derivations, NixEvaluation, e) for e in evaluations)
    return results[0], Derivations(tuple(sorted({o for r in results[1:] for o in r.outputs})))


@rule(desc="Package nix_oci_image")
async def package_nix_oci_image(field_set: NixOciImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names = field_set.names(tool)
    base_digest, from_image = EMPTY_DIGEST, ()

    def base_request(shallow: bool) -> ImageDependencyRequest:
        return ImageDependencyRequest(
            field_set.address,
            "base_image",
            field_set.base_image.value or "",
            "base",
            allowed=("nix_oci_image", RemoteOciImageTarget.alias),
            shallow=shallow,
        )

    if field_set.base_image.value:
        base = await Get(ImageDependency, ImageDependencyRequest, base_request(True))
        base_digest, from_image = base.digest, ("--from-image", base.layout_ref)
    roots, copy_to_root = await evaluate_derivations(field_set)
    fields = field_set.error_fields()
    plan_request = LayerforgeProcess(
        argv=(*field_set.plan_argv(names.ref, roots.outputs, copy_to_root.outputs), *from_image),
        description=f"Plan the layers of {field_set.address}",
        input_digest=base_digest,
        output_files=(PLAN,),
    )
    process = await Get(Process, LayerforgeProcess, plan_request)
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0 and from_image and SHALLOW_MISSING in result.stderr:
        # The plan looks into the base's files (an entrypoint or account only the base has):
        # plan on the complete base; the plan is the same, the assembly stays shallow.
        full = await Get(ImageDependency, ImageDependencyRequest, base_request(False))
        process = await Get(Process, LayerforgeProcess, dataclasses.replace(plan_request, input_digest=full.digest))
        result = await Get(FallibleProcessResult, Process, process)
    planned = checked(result, process.description, field_set.address, fields)
    (plan_file,) = await Get(DigestContents, Digest, planned.output_digest)
    jobs = planned_layers(plan_file.content, f"{PLAN} of {field_set.address}")
    processes = await MultiGet(
        Get(
            Process,
            LayerforgeProcess(
                argv=job.argv,
                description=f"Build layer {i + 1}/{len(jobs)} of {field_set.address}",
                input_digest=EMPTY_DIGEST,
                output_directories=(job.out,),
                native_command=True,
            ),
        )
        for i, job in enumerate(jobs)
    )
    results = await MultiGet(Get(FallibleProcessResult, Process, p) for p in processes)
    layers = [checked(r, p.description, field_set.address, fields) for r, p in zip(results, processes)]
    prefixed = await MultiGet(Get(Digest, AddPrefix(r.output_digest, f"l{i}")) for i, r in enumerate(layers))
    assemble_input = await Get(Digest, MergeDigests([planned.output_digest, base_digest, *prefixed]))
    layout = field_set.layout_dir()
    argv = ["nix-assemble", "--plan", PLAN, "--out", layout, *from_image]
    argv += ["--image-name", f"{names.repository}:{names.ref}"]
    argv += [a for i, job in enumerate(jobs) for a in ("--layer-dir", f"l{i}/{job.out}")]
    return await package_with(argv, f"Assemble the image of {field_set.address}", assemble_input, layout, names)


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, NixOciImageFieldSet)]
