"""What every image kind's `package` produces, and what `publish` needs to push it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField
from pants.engine.fs import Digest, DigestContents, DigestSubset, PathGlobs
from pants.engine.process import ProcessResult
from pants.engine.target import FieldSet

from layerforge_pants.goals import naming
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.target_types import (
    CmdField,
    EnvField,
    ImageOutputFormatField,
    ImageRegistriesField,
    ImageRepositoryField,
    ImageSkipPushField,
    ImageTagsField,
    LabelsField,
)
from layerforge_pants.goals.tool import LayerforgeProcess
from layerforge_pants.goals.tool_option import fields_argv, option


@dataclass(frozen=True)
class BuiltImageArtifact(BuiltPackageArtifact):
    """An OCI layout under dist/, the ref naming the image in it, and where it goes."""

    layout: str = ""
    ref: str = ""
    manifest_digest: str = ""
    repository: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageNames:
    repository: str
    tags: tuple[str, ...]
    #: Also write the layout as one oci-archive tar (the `output_format` field).
    archive: bool = False

    @property
    def ref(self) -> str:
        return self.tags[0]

    @property
    def image_name(self) -> str:
        """``repository:ref``: the layout entry's ``io.containerd.image.name``."""
        return f"{self.repository}:{self.ref}"


@dataclass(frozen=True)
class ImageFieldSet(FieldSet):
    """Fields every image kind has; kinds extend it with their own."""

    repository: ImageRepositoryField
    image_tags: ImageTagsField
    registries: ImageRegistriesField
    skip_push: ImageSkipPushField
    output_path: OutputPathField
    output_format: ImageOutputFormatField

    def names(self, tool: Layerforge) -> ImageNames:
        args = naming.build_args(tuple(tool.build_args))
        repo = naming.repository(self.repository.value or tool.default_repository, self.address, args)
        tags = naming.image_tags(tuple(self.image_tags.value or ImageTagsField.default), self.address, args)
        return ImageNames(repository=repo, tags=tags, archive=self.output_format.value == "oci-archive")

    def layout_dir(self) -> str:
        return self.output_path.value_or_default(file_ending=None)


def config_argv(cmd: CmdField, env: EnvField, labels: LabelsField) -> list[str]:
    """``--cmd``, ``--env`` and ``--label`` arguments of the image config, as every kind's
    command takes them."""
    return fields_argv(cmd, env, labels)


def manifest_digest(contents: DigestContents, ref: str) -> str:
    """The manifest digest ``ref`` names in the layout's index.json (``contents``)."""
    for fc in contents:
        for m in json.loads(fc.content).get("manifests", []):
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
                return str(m["digest"])
    return ""


def index_json(output: Digest, layout: str) -> DigestSubset:
    return DigestSubset(output, PathGlobs([f"{layout}/index.json"]))


def archive_path(layout: str) -> str:
    """Where `output_format="oci-archive"` writes the layout as one tar."""
    return f"{layout}.tar"


def named_argv(argv: list[str], names: ImageNames) -> list[str]:
    """``argv`` (a command and its options) with ``--image-name`` (the layout entry's
    ``io.containerd.image.name``) after the command, before any ``--``."""
    if any(a.startswith("--image-name=") for a in argv):
        return argv
    return [argv[0], option("--image-name", names.image_name), *argv[1:]]


def export_archive_process(output: Digest, layout: str) -> LayerforgeProcess:
    """``layerforge export-oci`` of the packaged layout into :func:`archive_path`."""
    archive = archive_path(layout)
    return LayerforgeProcess(
        argv=("export-oci", option("--out", archive), "--", layout),
        description=f"Write {layout} as the oci-archive {archive}",
        input_digest=output,
        output_files=(archive,),
    )


def record_path(layout: str) -> str:
    """`<output_path>.layerforge.json`: the build record beside the layout (docs/records.md)."""
    return f"{layout}.layerforge.json"


@dataclass(frozen=True)
class RecordLayers:
    """Layer directories (``layer.json`` and ``contents.json``, in ``digest``) whose layers'
    contents the build record takes from them (``argv``: their ``--layer-dir``s) instead of
    reading the blobs: the record's input then needs the layout without those blobs."""

    digest: Digest
    argv: tuple[str, ...]
    #: Every layer's contents are there: the package process itself writes the record
    #: (:func:`package_record_args`), with no process of its own.
    in_package: bool = False


def record_process(output: Digest, layout: str, names: ImageNames, layers: tuple[str, ...] = ()) -> LayerforgeProcess:
    """``layerforge record`` of the packaged layout's image into :func:`record_path`
    (``layers``: the ``--layer-dir`` arguments of :class:`RecordLayers`)."""
    record = record_path(layout)
    tags = [option("--tag", t) for t in names.tags]
    return LayerforgeProcess(
        argv=(
            "record",
            option("--out", record),
            option("--repository", names.repository),
            *tags,
            option("--output", layout),
            *((option("--archive", archive_path(layout)),) if names.archive else ()),
            *layers,
            "--",
            f"{layout}:{names.ref}",
        ),
        description=f"Write the build record {record}",
        input_digest=output,
        output_files=(record,),
    )


def package_record_args(layout: str, names: ImageNames) -> tuple[str, ...]:
    """The options that make ``nix-assemble`` write the build record :func:`record_process`
    writes (the same bytes), from the layer directories it reads."""
    return (
        option("--record", record_path(layout)),
        option("--record-repository", names.repository),
        *(option("--record-tag", t) for t in names.tags),
        option("--record-output", layout),
        *((option("--record-archive", archive_path(layout)),) if names.archive else ()),
    )


def artifact(layout: str, names: ImageNames, digest: str) -> BuiltImageArtifact:
    archive = (f"Wrote the oci-archive {archive_path(layout)}",) if names.archive else ()
    return BuiltImageArtifact(
        relpath=layout,
        extra_log_lines=(
            f"Built OCI image layout {layout} ({names.ref}): {digest}",
            *archive,
            f"Wrote the build record {record_path(layout)}",
            f"Publishes as {names.repository}:{', '.join(names.tags)}",
        ),
        layout=layout,
        ref=names.ref,
        manifest_digest=digest,
        repository=names.repository,
        tags=names.tags,
    )


def package_process(argv: list[str], description: str, input_digest: Digest, layout: str) -> LayerforgeProcess:
    """One layerforge process that writes the OCI layout ``layout``."""
    return LayerforgeProcess(
        argv=tuple(argv), description=description, input_digest=input_digest, output_directories=(layout,)
    )


def layout_subset(result: ProcessResult, layout: str) -> DigestSubset:
    return DigestSubset(result.output_digest, PathGlobs([f"{layout}/**"]))


def built_package(output: Digest, layout: str, names: ImageNames, digest: str) -> BuiltPackage:
    return BuiltPackage(digest=output, artifacts=(artifact(layout, names, digest),))
