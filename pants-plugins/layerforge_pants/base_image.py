"""Resolving a ``base_image`` field: the other image target is packaged first and its OCI
layout becomes an input of the processes that build on it."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    InvalidFieldException,
    WrappedTarget,
    WrappedTargetRequest,
)

from layerforge_pants.image_package import BuiltImageArtifact, ImageFieldSet
from layerforge_pants.target_types import BaseImageField

BASE_PREFIX = "base"


@dataclass(frozen=True)
class BaseImageRequest:
    field: BaseImageField


@dataclass(frozen=True)
class BaseImage:
    """The base layout placed under ``base/`` in an input digest (empty when there is none)."""

    digest: Digest
    layout: str = ""
    ref: str = ""

    @property
    def from_image_arg(self) -> tuple[str, ...]:
        return ("--from-image", f"{BASE_PREFIX}/{self.layout}:{self.ref}") if self.layout else ()


@rule(desc="Resolve a base image")
async def resolve_base_image(request: BaseImageRequest) -> BaseImage:
    field = request.field
    if not field.value:
        return BaseImage(EMPTY_DIGEST)
    where = f"the `{field.alias}` field of {field.address}"
    addresses = await Get(
        Addresses, UnparsedAddressInputs([field.value], owning_address=field.address, description_of_origin=where)
    )
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(addresses[0], description_of_origin=where))
    target = wrapped.target
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [target]))
    images = [fs for fs in field_sets.field_sets if isinstance(fs, ImageFieldSet)]
    if not images:
        raise InvalidFieldException(
            f"The `{field.alias}` field of {field.address} points to {target.address}, a `{target.alias}` "
            "target; it must be an image target (nix_oci_image, unikraft_image, nydus_image)."
        )
    package = await Get(BuiltPackage, PackageFieldSet, images[0])
    artifact = next(a for a in package.artifacts if isinstance(a, BuiltImageArtifact))
    digest = await Get(Digest, AddPrefix(package.digest, BASE_PREFIX))
    return BaseImage(digest=digest, layout=artifact.layout, ref=artifact.ref)


def rules():
    return collect_rules()
