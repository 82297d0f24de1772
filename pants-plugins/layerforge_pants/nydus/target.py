"""The nydus_image target: another image target converted to Nydus RAFS v6 for lazy pulling
(`layerforge nydus-image`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    BoolField,
    Dependencies,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from layerforge_pants.goals.field_rules import checked, choices, default_of
from layerforge_pants.goals.roles import IMAGE, INDEX_ENTRY
from layerforge_pants.goals.target_types import COMMON_IMAGE_FIELDS
from layerforge_pants.goals.tool_option import ToolFlagField, ToolOptionField


class NydusSourceImageField(StringField):
    alias = "source_image"
    required = True
    help = (
        "Address of the image target to convert (a `nix_oci_image`, a `remote_oci_image`, or an "
        "`oci_image_index`, converted platform by platform into an index)."
    )


class NydusChunkSizeField(ToolOptionField, StringField):
    alias = "chunk_size"
    flag = "--chunk-size"
    help = "Chunk size: a power of two from 4 KiB to 16 MiB, like `1MiB` or `0x100000` (default 1 MiB)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            checked(cls.alias, address, "nydus.chunk_size", value)
        return value


class NydusCompressorField(ToolOptionField, StringField):
    alias = "compressor"
    flag = "--compressor"
    default = default_of("nydus.compressor")
    valid_choices = choices("nydus.compressor")
    help = "Compressor of the chunks in the data blobs."


class NydusDigesterField(ToolOptionField, StringField):
    alias = "digester"
    flag = "--digester"
    default = default_of("nydus.digester")
    valid_choices = choices("nydus.digester")
    help = "Digest of chunks (dedup key) in the bootstrap."


class NydusChunkDictField(StringField):
    alias = "chunk_dict"
    help = help_text(
        """
        Address of another `nydus_image` target whose chunks this image reuses instead of
        storing them again (cross-image dedup).
        """
    )


class NydusPrefetchField(ToolOptionField, StringSequenceField):
    alias = "prefetch"
    flag = "--prefetch"
    help = "Absolute paths to list in the bootstrap's prefetch table, fetched first at run time (default `/`)."

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for path in value or ():
            checked(cls.alias, address, "nydus.prefetch", path)
        return value


class NydusMergePlatformField(ToolFlagField, BoolField):
    alias = "merge_platform"
    flag = "--merge-platform"
    default = False
    help = "Write an image index holding both the original image and the Nydus one (nydusify's --merge-platform)."


class NydusDependenciesField(Dependencies):
    pass


class NydusImageTarget(Target):
    alias = "nydus_image"
    roles = frozenset({IMAGE, INDEX_ENTRY})
    core_fields = (
        *COMMON_IMAGE_FIELDS,
        NydusDependenciesField,
        NydusSourceImageField,
        NydusChunkSizeField,
        NydusCompressorField,
        NydusDigesterField,
        NydusChunkDictField,
        NydusPrefetchField,
        NydusMergePlatformField,
    )
    help = help_text(
        """
        An image target converted to Nydus RAFS v6 (`layerforge nydus-image`), as `nydusify
        convert` does: one Nydus data blob per layer, a merged RAFS v6 bootstrap as the last
        layer, readable by nydus-snapshotter and nydusd for lazy pulling.
        """
    )
