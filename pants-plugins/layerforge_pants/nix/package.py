"""`pants package` for nix_oci_image: an evaluation (uncached, see evaluation.py), a plan process,
one process per layer job of the plan, an assembly process. The plan is keyed by the
derivations the evaluation printed (or the target's store paths), never by the Nix file's text:
what Nix read is in them. The unit of caching is the job: a layer, or a batch of small
consecutive layers (a process costs more than building a few MB). A job's argv holds only its
own store paths and options, so changing one store path re-runs only its job (plus plan and
assembly).
Store paths are read from the host's store: immutable and named by their inputs' hash, they
make a sound cache key; a layer whose paths this machine lacks realises them first.
The assembly reads only each layer's layer.json: the layer blobs go from the layer processes'
outputs into the package's digest by reference (see :func:`layer_blob`), so their bytes are
captured once (as layer outputs) and written once (to dist/)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from pants.core.goals.package import PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, DigestContents, DigestEntries, FileEntry, PathGlobs
from pants.engine.unions import UnionRule

from layerforge_pants.goals.package import ImageFieldSet
from layerforge_pants.goals.target_types import (
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
from layerforge_pants.goals.tool import LayerforgeProcess
from layerforge_pants.goals.tool_option import ToolOptionField, fields_argv, option, option_fields
from layerforge_pants.nix.flake import FlakeRef, parse_flake_ref
from layerforge_pants.nix.plan import PLAN, planned_layers
from layerforge_pants.nix.target import (
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

#: What a layerforge command says when it needs a layer blob a shallow layout lacks.
SHALLOW_MISSING = b"is a shallow layout without blob"


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

    def flake_refs(self) -> tuple[FlakeRef, ...]:
        """The flake outputs an image of a `flake` reads: that output, then each of its
        `copy_to_root_attrs`; one that does not parse is an error naming its field."""
        own = parse_flake_ref(self.flake.value or "", self.address, self.flake.alias)
        attrs = self.copy_to_root_attrs.value or ()
        return (own, *(parse_flake_ref(a, self.address, self.copy_to_root_attrs.alias) for a in attrs))

    def plan_option_fields(self) -> tuple[ToolOptionField, ...]:
        """The fields that set options of `layerforge nix-plan`, each rendering its own."""
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return tuple(v for v in values if isinstance(v, ToolOptionField))

    def error_fields(self) -> dict[str, str]:
        """layerforge's options -> the fields they come from, for errors of plan and layers."""
        return {
            **option_fields(*self.plan_option_fields()),
            "--tag": ImageTagsField.alias,
            "--from-image": BaseImageField.alias,
            "--derivation": self.source_field,
            "--store-path": self.source_field,
            "--copy-to-root-derivation": self.copy_to_root_attrs.alias,
            "--copy-to-root": (self.copy_to_root if self.copy_to_root.value else self.copy_to_root_attrs).alias,
        }

    def plan_argv(self, ref: str, derivations: tuple[str, ...], copy_to_root: tuple[str, ...]) -> list[str]:
        """``layerforge nix-plan`` of the target: its option fields' arguments (every value as
        ``--flag=value``), then the closure's derivations and store paths."""
        argv = ["nix-plan", option("--out", PLAN), option("--tag", ref), *fields_argv(*self.plan_option_fields())]
        argv += [option("--derivation", d) for d in derivations]
        argv += [option("--copy-to-root-derivation", d) for d in copy_to_root]
        argv += [option("--store-path", p) for p in self.store_paths.value or ()]
        return argv

    def provenance_argv(self) -> list[str]:
        """``nix-assemble``'s record of the target and the Nix file or flake the plan's
        derivations were evaluated from, for the provenance an `sbom` image carries (nothing
        otherwise: the assembly of other images is keyed as before). The files it names are in
        the assembly's sandbox (:func:`layerforge_pants.nix.evaluate.provenance_files`)."""
        if not self.sbom.value:
            return []
        argv = [option("--provenance-target", self.address.spec)]
        if self.system.value:
            argv.append(option("--provenance-system", self.system.value))
        if self.nix_file.value:
            argv.append(option("--provenance-nix-file", self.nix_file.file_path))
            if self.attr.value:
                argv.append(option("--provenance-attr", self.attr.value))
            argv += [option("--provenance-argstr", f"{k}={v}") for k, v in sorted((self.argstrs.value or {}).items())]
            # copy-to-root attributes of a Nix file are attributes of that file
            attrs = self.copy_to_root_attrs.value or ()
        elif self.flake.value:
            flake, *copied = self.flake_refs()
            argv.append(option("--provenance-flake", flake.installable()))
            attrs = tuple(r.installable() for r in copied)
        else:
            attrs = ()
        return [*argv, *(option("--provenance-copy-to-root-attr", a) for a in attrs)]


def layer_requests(plan_content: bytes, address: Address) -> list[LayerforgeProcess]:
    """One process per layer job of the plan (see plan.py), each its job's argv as it is,
    writing its layer directories."""
    jobs = planned_layers(plan_content, f"{PLAN} of {address}")
    total = sum(len(job.outs) for job in jobs)
    requests, done = [], 0
    for job in jobs:
        first, done = done + 1, done + len(job.outs)
        which = f"layer {first}" if first == done else f"layers {first}-{done}"
        requests.append(
            LayerforgeProcess(
                argv=job.argv,
                description=f"Build {which}/{total} of {address}",
                input_digest=EMPTY_DIGEST,
                output_directories=job.outs,
                native_command=True,
            )
        )
    return requests


def layer_dir_args(requests: list[LayerforgeProcess]) -> list[str]:
    """``nix-assemble``'s ``--layer-dir`` arguments for the layers of ``requests`` in order,
    each process's under its ``l<i>/`` prefix."""
    return [option("--layer-dir", f"l{i}/{out}") for i, r in enumerate(requests) for out in r.output_directories]


def from_image_args(layout_ref: str) -> tuple[str, ...]:
    """``--from-image`` of the base image's layout in the sandbox."""
    return (option("--from-image", layout_ref),)


def assemble_argv(
    layout: str,
    image_name: str,
    from_image: tuple[str, ...],
    requests: list[LayerforgeProcess],
    provenance: list[str] | None = None,
) -> list[str]:
    """``layerforge nix-assemble`` writing the image ``image_name`` into ``layout`` (the
    target's `output_path`) from the plan and the layers of ``requests``; ``provenance``: the
    field set's :meth:`~NixOciImageFieldSet.provenance_argv`."""
    argv = ["nix-assemble", option("--plan", PLAN), option("--out", layout), "--without-layer-blobs", *from_image]
    return [*argv, option("--image-name", image_name), *(provenance or ()), *layer_dir_args(requests)]


#: What a layer directory holds beside its blob (see layerforge.layers.layer_dir): its
#: descriptor, and what it holds (as the build record lists it; a layer process of an older
#: tool wrote none).
LAYER_JSON = "layer.json"
CONTENTS_JSON = "contents.json"


def layer_json_glob(request: LayerforgeProcess) -> PathGlobs:
    """The layer.json and contents.json of each of ``request``'s layer directories: all the
    assembly (layer.json) and the build record (contents.json) read of a layer."""
    return PathGlobs([f"{out}/{name}" for out in request.output_directories for name in (LAYER_JSON, CONTENTS_JSON)])


def listed_layers(
    meta_files: list[DigestContents], requests: list[LayerforgeProcess], blobs: list[list[FileEntry]]
) -> tuple[tuple[str, ...], list[FileEntry]]:
    """The build record's ``--layer-dir`` arguments (each layer directory with a contents.json,
    under its ``l<i>/`` prefix) and the blobs (of :func:`layer_blobs`) of the other layers, which
    the record reads."""
    args, unlisted = [], []
    for i, (files, request, layer_blobs_) in enumerate(zip(meta_files, requests, blobs)):
        paths = {f.path for f in files}
        for out, blob in zip(request.output_directories, layer_blobs_):
            if f"{out}/{CONTENTS_JSON}" in paths:
                args.append(option("--layer-dir", f"l{i}/{out}"))
            else:
                unlisted.append(blob)
    return tuple(args), unlisted


class LayerOutputInvalid(Exception):
    """A layer process's output is not one blob under its own digest, as its layer.json says."""


def layer_blobs(
    entries: DigestEntries, layer_json: DigestContents, request: LayerforgeProcess, layout: str
) -> list[FileEntry]:
    """The blob of each layer directory of a layer process's output (see :func:`layer_blob`)."""
    return [layer_blob(entries, layer_json, request, out, layout) for out in request.output_directories]


def layer_blob(
    entries: DigestEntries, layer_json: DigestContents, request: LayerforgeProcess, out: str, layout: str
) -> FileEntry:
    """The blob of the layer directory ``out`` of a layer process's output, as it goes into
    ``layout``: the directory must hold exactly one blob, under ``blobs/sha256/`` and named by
    the sha256 of its bytes (Pants' digest of the file), and its layer.json (in
    ``layer_json``: the contents of the output's :func:`layer_json_glob` subset) must describe
    that blob (digest and size). The
    entry's path is made from that digest: the blob reaches the image without its bytes being
    copied, read or materialised again, and only ever under its own digest. A bad output (a
    corrupt or hostile cache entry) is an error naming the process (and so the target)."""

    def invalid(why: str) -> LayerOutputInvalid:
        return LayerOutputInvalid(f"{request.description} gave a bad layer directory {out}/: {why}")

    blobs = [e for e in entries if isinstance(e, FileEntry) and e.path.startswith(f"{out}/blobs/")]
    if len(blobs) != 1:
        raise invalid(f"{len(blobs)} blobs under blobs/, not 1")
    (blob,) = blobs
    fingerprint = blob.file_digest.fingerprint
    if blob.path != f"{out}/blobs/sha256/{fingerprint}":
        raise invalid(f"{blob.path} holds bytes of digest sha256:{fingerprint}")
    meta = [f.content for f in layer_json if f.path == f"{out}/{LAYER_JSON}"]
    try:
        descriptor = json.loads(meta[0] if meta else b"")["descriptor"]
        digest, size = str(descriptor["digest"]), int(descriptor["size"])
    except (ValueError, KeyError, TypeError) as e:
        raise invalid(f"{LAYER_JSON} does not describe a layer ({e})") from None
    if (digest, size) != (f"sha256:{fingerprint}", blob.file_digest.serialized_bytes_length):
        raise invalid(f"{LAYER_JSON} describes {digest} ({size} bytes), the blob is sha256:{fingerprint}")
    return FileEntry(f"{layout}/blobs/sha256/{fingerprint}", blob.file_digest)


def unique_blobs(blobs: list[FileEntry]) -> list[FileEntry]:
    """``blobs`` without repeats (two layers of the same bytes are one blob)."""
    return list({b.path: b for b in blobs}.values())


def rules():
    return [UnionRule(PackageFieldSet, NixOciImageFieldSet)]
