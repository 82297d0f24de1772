"""Targets of the layerforge backend and their fields.

Common to every image kind: ``repository``, ``image_tags`` (Pants reserves ``tags`` for target
tags), ``registries``, ``skip_push``, ``output_path``. Each kind mirrors the options of its
``layerforge`` subcommand.
"""

from __future__ import annotations

from typing import Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    DictStringToStringField,
    IntField,
    InvalidFieldException,
    StringField,
    StringSequenceField,
)
from pants.util.strutil import help_text

from layerforge_pants.goals.field_rules import choices, default_of
from layerforge_pants.goals.tool_option import ToolJsonOptionField, ToolMappingOptionField, ToolOptionField

# -- common image fields --------------------------------------------------------------------


class ImageRepositoryField(StringField):
    alias = "repository"
    help = help_text(
        """
        Repository of the image in its registries, e.g. `team/app`. Defaults to
        `[layerforge].default_repository` (`{name}`). May use `{name}`, `{directory}`,
        `{parent_directory}` and `{build_args.NAME}`.
        """
    )


class ImageTagsField(StringSequenceField):
    alias = "image_tags"
    default = ("latest",)
    help = help_text(
        """
        Tags of the image. The first also names the image in the OCI layout written to `dist/`.
        May use `{build_args.NAME}` (from `[layerforge].build_args`), `{name}` and `{directory}`.
        """
    )


class ImageRegistriesField(StringSequenceField):
    alias = "registries"
    default = ()
    help = help_text(
        """
        Registries to push to on `pants publish`: `@alias` for a `[layerforge.registries]` entry,
        or a literal `host[:port]`. Empty means every registry marked `default = true`.
        """
    )


class ImageSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `pants publish` builds but does not push this image."


class ImageOutputPathField(OutputPathField):
    help = help_text(
        """
        Where under `dist/` the OCI image layout is written (a directory). Defaults to
        `path.to.target/target_name`.
        """
    )


class ImageSourceAnnotationField(ToolOptionField, StringField):
    alias = "image_source"
    flag = "--source"
    help = "Value of the `org.opencontainers.image.source` annotation (e.g. the repository URL)."


class ImageRevisionAnnotationField(ToolOptionField, StringField):
    alias = "image_revision"
    flag = "--revision"
    help = "Value of the `org.opencontainers.image.revision` annotation (e.g. a commit)."


class ImageOutputFormatField(StringField):
    alias = "output_format"
    default = "oci"
    valid_choices = ("oci", "oci-archive")
    help = help_text(
        """
        `oci`: `pants package` writes the OCI image layout (a directory under `dist/`).
        `oci-archive`: it also writes that layout as one tar, `<output_path>.tar` (reproducible;
        `skopeo copy oci-archive:...`, `podman load`, `ctr images import` and kraft read it).
        """
    )


COMMON_IMAGE_FIELDS = (
    *COMMON_TARGET_FIELDS,
    ImageRepositoryField,
    ImageTagsField,
    ImageRegistriesField,
    ImageSkipPushField,
    ImageOutputPathField,
    ImageOutputFormatField,
    ImageSourceAnnotationField,
    ImageRevisionAnnotationField,
)

# -- container configuration (shared by kinds that run a process) ---------------------------


class EntrypointField(ToolJsonOptionField, StringSequenceField):
    alias = "entrypoint"
    flag = "--entrypoint"
    help = "Entrypoint argv of the image (checked to exist in the image)."


class CmdField(ToolJsonOptionField, StringSequenceField):
    alias = "cmd"
    flag = "--cmd"
    help = "Default arguments (argv) of the image."


class EnvField(ToolMappingOptionField, DictStringToStringField):
    alias = "env"
    flag = "--env"
    help = "Environment variables of the image."


class WorkdirField(ToolOptionField, StringField):
    alias = "workdir"
    flag = "--workdir"
    help = "Working directory (absolute)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not value.startswith("/"):
            raise InvalidFieldException(f"The `{cls.alias}` field of {address} must be absolute, got {value!r}.")
        return value


class UserField(ToolOptionField, StringField):
    alias = "user"
    flag = "--user"
    help = "User (and group) the image runs as: `name`, `uid`, `name:group` or `uid:gid`."


class LabelsField(ToolMappingOptionField, DictStringToStringField):
    alias = "labels"
    flag = "--label"
    help = "Labels of the image config."


class ExposedPortsField(ToolOptionField, StringSequenceField):
    alias = "exposed_ports"
    flag = "--expose"
    help = "Ports the image exposes, like `8080` or `53/udp`."


class VolumesField(ToolOptionField, StringSequenceField):
    alias = "volumes"
    flag = "--volume"
    help = "Volume mount points (absolute paths)."


class StopSignalField(ToolOptionField, StringField):
    alias = "stop_signal"
    flag = "--stop-signal"
    help = "Signal that stops the container, e.g. `SIGTERM`."


RUNTIME_FIELDS = (
    EntrypointField,
    CmdField,
    EnvField,
    WorkdirField,
    UserField,
    LabelsField,
    ExposedPortsField,
    VolumesField,
    StopSignalField,
)


class CompressionField(ToolOptionField, StringField):
    alias = "compression"
    flag = "--compression"
    default = default_of("layer.compression")
    valid_choices = choices("layer.compression")
    help = "Layer compression."


class CompressionLevelField(ToolOptionField, IntField):
    alias = "compression_level"
    flag = "--level"
    help = "Compression level (gzip 1-9, default 6; zstd 1-19, default 3; none takes no level)."


class BaseImageField(StringField, AsyncFieldMixin):
    alias = "base_image"
    help = help_text(
        """
        Address of another image target whose layers and configuration come first
        (like `--from-image`): its config is merged, not dropped.
        """
    )
