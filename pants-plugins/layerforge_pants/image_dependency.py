"""Fields that name another image target (`base_image`, `rootfs_image`, `source_image`,
`platforms`): the other target is packaged first (a `remote_oci_image` is pulled), and its
OCI layout is placed under a prefix in the input digest of the processes that use it."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, Digest
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    InvalidFieldException,
    WrappedTarget,
    WrappedTargetRequest,
)

from layerforge_pants.image_package import BuiltImageArtifact, ImageFieldSet
from layerforge_pants.remote_pull import PulledImage, RemoteImageRequest
from layerforge_pants.remote_target import RemoteImageField, RemoteOciImageTarget, RemotePlatformsField

IMAGE_TARGETS = ("nix_oci_image", "unikraft_image", "nydus_image", RemoteOciImageTarget.alias)


@dataclass(frozen=True)
class ImageDependencyRequest:
    """``value`` (an address) from the field ``field`` of ``owner``, which must be one of the
    target kinds ``allowed``; its layout goes under ``prefix``."""

    owner: Address
    field: str
    value: str
    prefix: str
    allowed: tuple[str, ...] = IMAGE_TARGETS


@dataclass(frozen=True)
class ImageDependency:
    digest: Digest
    address: Address
    layout: str
    ref: str
    prefix: str

    @property
    def layout_ref(self) -> str:
        """``PREFIX/LAYOUT:REF`` as layerforge's commands take it."""
        return f"{self.prefix}/{self.layout}:{self.ref}"


@rule(desc="Package an image another image builds on")
async def package_image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    where = f"the `{request.field}` field of {request.owner}"
    addresses = await Get(
        Addresses, UnparsedAddressInputs([request.value], owning_address=request.owner, description_of_origin=where)
    )
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(addresses[0], description_of_origin=where))
    target = wrapped.target
    kinds = " or ".join(request.allowed)
    if target.alias not in request.allowed:
        raise InvalidFieldException(
            f"The `{request.field}` field of {request.owner} points to {target.address}, a `{target.alias}` "
            f"target; it must be an image target ({kinds})."
        )
    if target.alias == RemoteOciImageTarget.alias:
        pulled = await Get(
            PulledImage,
            RemoteImageRequest,
            RemoteImageRequest.of(target.address, target[RemoteImageField], target[RemotePlatformsField]),
        )
        digest = await Get(Digest, AddPrefix(pulled.digest, request.prefix))
        return ImageDependency(digest, target.address, pulled.layout, pulled.ref, request.prefix)
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [target]))
    images = [fs for fs in field_sets.field_sets if isinstance(fs, ImageFieldSet)]
    if not images:
        raise InvalidFieldException(f"{where}: {target.address} cannot be packaged as an image ({kinds}).")
    package = await Get(BuiltPackage, PackageFieldSet, images[0])
    artifact = next(a for a in package.artifacts if isinstance(a, BuiltImageArtifact))
    digest = await Get(Digest, AddPrefix(package.digest, request.prefix))
    return ImageDependency(digest, target.address, artifact.layout, artifact.ref, request.prefix)


def rules():
    return collect_rules()
