"""Fields that name another image target (`base_image`, `rootfs_image`, `source_image`,
`platforms`): the other target is packaged first (a `remote_oci_image` is pulled), and its
OCI layout is placed under a prefix in the input digest of the processes that use it.

Shallow bases: a nix_oci_image asks for its `remote_oci_image` base shallow (manifests and
configs), so its package holds the base's layer descriptors without their blobs. Everything
else asks for a complete image: a nix_oci_image's package is then completed with its base's
blobs, from the full pull (:class:`CompleteLayoutRequest`)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, Digest, DigestSubset, MergeDigests, PathGlobs, RemovePrefix
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
from layerforge_pants.target_types import BaseImageField

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
    shallow: bool = False  # a remote image's manifests and configs only; a nix image not completed


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


@dataclass(frozen=True)
class CompleteLayoutRequest:
    """The package ``digest`` of ``address`` (its layout at ``layout``), with every blob its
    image lists: a nix_oci_image on a shallow base gets the base's blobs."""

    address: Address
    digest: Digest
    layout: str


@dataclass(frozen=True)
class CompleteLayout:
    digest: Digest


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
            RemoteImageRequest.of(
                target.address, target[RemoteImageField], target[RemotePlatformsField], request.shallow
            ),
        )
        digest = await Get(Digest, AddPrefix(pulled.digest, request.prefix))
        return ImageDependency(digest, target.address, pulled.layout, pulled.ref, request.prefix)
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [target]))
    images = [fs for fs in field_sets.field_sets if isinstance(fs, ImageFieldSet)]
    if not images:
        raise InvalidFieldException(f"{where}: {target.address} cannot be packaged as an image ({kinds}).")
    package = await Get(BuiltPackage, PackageFieldSet, images[0])
    artifact = next(a for a in package.artifacts if isinstance(a, BuiltImageArtifact))
    layout = package.digest
    if not request.shallow:
        completed = await Get(CompleteLayout, CompleteLayoutRequest(target.address, package.digest, artifact.layout))
        layout = completed.digest
    digest = await Get(Digest, AddPrefix(layout, request.prefix))
    return ImageDependency(digest, target.address, artifact.layout, artifact.ref, request.prefix)


@rule(desc="Complete an image built on a shallow base")
async def complete_layout(request: CompleteLayoutRequest) -> CompleteLayout:
    where = "a complete image"
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin=where))
    target = wrapped.target
    if not target.has_field(BaseImageField) or not target[BaseImageField].value:
        return CompleteLayout(request.digest)
    prefix = "complete-base"
    base = await Get(
        ImageDependency,
        ImageDependencyRequest(
            target.address,
            BaseImageField.alias,
            target[BaseImageField].value,
            prefix,
            allowed=("nix_oci_image", RemoteOciImageTarget.alias),
        ),
    )
    base_dir = f"{prefix}/{base.layout}"
    blobs = await Get(Digest, DigestSubset(base.digest, PathGlobs([f"{base_dir}/blobs/**"])))
    moved = await Get(Digest, AddPrefix(await Get(Digest, RemovePrefix(blobs, base_dir)), request.layout))
    return CompleteLayout(await Get(Digest, MergeDigests([request.digest, moved])))


def rules():
    return collect_rules()
