"""`pants package` for nydus_image: the source image target is packaged first, then one
`layerforge nydus-image` process converts it (cached by the source layout's digest and the
options)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import PackageFieldSet
from pants.engine.unions import UnionRule

from layerforge_pants.goals import roles
from layerforge_pants.goals.dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.goals.package import ImageFieldSet, ImageNames
from layerforge_pants.goals.roles import NYDUS_SOURCE
from layerforge_pants.goals.tool_option import fields_argv, option
from layerforge_pants.nydus.target import (
    NydusChunkDictField,
    NydusChunkSizeField,
    NydusCompressorField,
    NydusDigesterField,
    NydusImageTarget,
    NydusMergePlatformField,
    NydusPrefetchField,
    NydusSourceImageField,
)


@dataclass(frozen=True)
class NydusImageFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (NydusSourceImageField,)

    source_image: NydusSourceImageField
    chunk_size: NydusChunkSizeField
    compressor: NydusCompressorField
    digester: NydusDigesterField
    chunk_dict: NydusChunkDictField
    prefetch: NydusPrefetchField
    merge_platform: NydusMergePlatformField


def image_requests(field_set: NydusImageFieldSet) -> list[ImageDependencyRequest]:
    """The source image and, if named, the chunk dictionary, packaged first."""
    address = field_set.address
    requests = [
        ImageDependencyRequest(
            address, "source_image", field_set.source_image.value or "", "source", allowed=roles.allowed(NYDUS_SOURCE)
        )
    ]
    if field_set.chunk_dict.value:
        requests.append(
            ImageDependencyRequest(
                address, "chunk_dict", field_set.chunk_dict.value, "dict", allowed=(NydusImageTarget.alias,)
            )
        )
    return requests


def nydus_argv(field_set: NydusImageFieldSet, names: ImageNames, images: tuple[ImageDependency, ...]) -> list[str]:
    """`layerforge nydus-image` of the source image: every value as ``--flag=value`` (see
    :func:`option`), the source after ``--``."""
    argv = ["nydus-image", option("--out", field_set.layout_dir()), option("--tag", names.ref)]
    f = field_set
    argv += fields_argv(f.compressor, f.digester, f.chunk_size, f.prefetch, f.merge_platform)
    if len(images) > 1:
        argv.append(option("--chunk-dict", images[1].layout_ref))
    return [*argv, "--", images[0].layout_ref]


def rules():
    return [UnionRule(PackageFieldSet, NydusImageFieldSet)]
