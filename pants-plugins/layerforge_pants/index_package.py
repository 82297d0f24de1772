"""`package` for `oci_image_index`: the images are packaged, then `layerforge index` makes one
layout of them (their platforms from their configs, duplicates refused naming both targets)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import InvalidFieldException
from pants.engine.unions import UnionRule

from layerforge_pants.image_dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.image_package import ImageFieldSet, package_with
from layerforge_pants.index_target import INDEX_IMAGE_KINDS, IndexImagesField
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.target_types import ImageRevisionAnnotationField, ImageSourceAnnotationField


@dataclass(frozen=True)
class OciImageIndexFieldSet(ImageFieldSet, PackageFieldSet):
    required_fields = (IndexImagesField,)

    images: IndexImagesField
    image_source: ImageSourceAnnotationField
    image_revision: ImageRevisionAnnotationField


@rule(desc="Package oci_image_index")
async def package_oci_image_index(field_set: OciImageIndexFieldSet, tool: Layerforge) -> BuiltPackage:
    names = field_set.names(tool)
    address = field_set.address
    values = tuple(field_set.images.value or ())
    if not values:
        raise InvalidFieldException(f"The `images` field of {address} names no image.")
    images = await MultiGet(
        Get(
            ImageDependency,
            ImageDependencyRequest(address, "images", value, f"images/{i}", allowed=INDEX_IMAGE_KINDS),
        )
        for i, value in enumerate(values)
    )
    layout = field_set.layout_dir()
    argv = ["index", *(i.layout_ref for i in images), "--out", layout, "--tag", names.ref]
    argv += [a for i in images for a in ("--label", i.address.spec)]
    for flag, text in (("--source", field_set.image_source.value), ("--revision", field_set.image_revision.value)):
        if text:
            argv += [flag, text]
    input_digest = await Get(Digest, MergeDigests(i.digest for i in images))
    return await package_with(argv, f"Package the image index {address}", input_digest, layout, names)


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, OciImageIndexFieldSet)]
