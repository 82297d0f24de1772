"""`package` for `oci_image_index`: the images are packaged, then `layerforge index` makes one
layout of them (their platforms from their configs, duplicates refused naming both targets)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import PackageFieldSet
from pants.engine.target import InvalidFieldException
from pants.engine.unions import UnionRule

from layerforge_pants.goals import roles
from layerforge_pants.goals.dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.goals.package import ImageFieldSet, ImageNames
from layerforge_pants.goals.roles import INDEX_ENTRY
from layerforge_pants.goals.target_types import ImageRevisionAnnotationField, ImageSourceAnnotationField
from layerforge_pants.goals.tool_option import fields_argv, option
from layerforge_pants.index.target import IndexImagesField


@dataclass(frozen=True)
class OciImageIndexFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (IndexImagesField,)

    images: IndexImagesField
    image_source: ImageSourceAnnotationField
    image_revision: ImageRevisionAnnotationField


def image_requests(field_set: OciImageIndexFieldSet) -> list[ImageDependencyRequest]:
    """The `images`, packaged first."""
    address = field_set.address
    values = tuple(field_set.images.value or ())
    if not values:
        raise InvalidFieldException(f"The `images` field of {address} names no image.")
    return [
        ImageDependencyRequest(address, "images", value, f"images/{i}", allowed=roles.allowed(INDEX_ENTRY))
        for i, value in enumerate(values)
    ]


def index_argv(field_set: OciImageIndexFieldSet, names: ImageNames, images: tuple[ImageDependency, ...]) -> list[str]:
    """`layerforge index` of the images: every value as ``--flag=value`` (see :func:`option`),
    the images after ``--``."""
    argv = ["index", option("--out", field_set.layout_dir()), option("--tag", names.ref)]
    argv += [option("--label", i.address.spec) for i in images]
    argv += fields_argv(field_set.image_source, field_set.image_revision)
    return [*argv, "--", *(i.layout_ref for i in images)]


def rules():
    return [UnionRule(PackageFieldSet, OciImageIndexFieldSet)]
