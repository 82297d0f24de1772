"""Fields that name another image target (`base_image`, `rootfs_image`, `source_image`,
`platforms`): the other target is packaged first (a `remote_oci_image` is pulled), and its
OCI layout is placed under a prefix in the input digest of the processes that use it.

Shallow bases: a nix_oci_image asks for its `remote_oci_image` base shallow (manifests and
configs), so its package holds the base's layer descriptors without their blobs. Everything
else asks for a complete image: a nix_oci_image's package is then completed with the blobs of
every base below it, down to the full pull of a remote one (`dependency_rules.completed`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import Digest, DigestSubset, PathGlobs
from pants.engine.target import FieldSetsPerTarget, InvalidFieldException, Target

from layerforge_pants.goals import roles
from layerforge_pants.goals.package import BuiltImageArtifact, ImageFieldSet
from layerforge_pants.goals.pull import PulledImage, PulledTarget, RemoteImageRequest
from layerforge_pants.goals.roles import BASE, IMAGE
from layerforge_pants.goals.target_types import BaseImageField


@dataclass(frozen=True)
class ImageDependencyRequest:
    """``value`` (an address) from the field ``field`` of ``owner``, which must be one of the
    target kinds ``allowed``; its layout goes under ``prefix``."""

    owner: Address
    field: str
    value: str
    prefix: str
    allowed: tuple[str, ...] = field(default_factory=lambda: roles.allowed(IMAGE))
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


def origin(request: ImageDependencyRequest) -> str:
    return f"the `{request.field}` field of {request.owner}"


def address_inputs(request: ImageDependencyRequest) -> UnparsedAddressInputs:
    return UnparsedAddressInputs([request.value], owning_address=request.owner, description_of_origin=origin(request))


def checked_kind(request: ImageDependencyRequest, target: Target) -> Target:
    """``target``, if it is one of the kinds ``request`` allows."""
    if target.alias not in request.allowed:
        raise InvalidFieldException(
            f"The `{request.field}` field of {request.owner} points to {target.address}, a `{target.alias}` "
            f"target; it must be an image target ({' or '.join(request.allowed)})."
        )
    return target


def is_remote(target: Target) -> bool:
    """``target``'s image is pulled (a remote_oci_image), not built."""
    return isinstance(target, PulledTarget)


def pull_request(request: ImageDependencyRequest, target: Target) -> RemoteImageRequest:
    assert isinstance(target, PulledTarget)
    return target.pull_request(request.shallow)


def pulled_dependency(
    request: ImageDependencyRequest, target: Target, pulled: PulledImage, digest: Digest
) -> ImageDependency:
    return ImageDependency(digest, target.address, pulled.layout, pulled.ref, request.prefix)


def image_field_set(request: ImageDependencyRequest, target: Target, field_sets: FieldSetsPerTarget) -> ImageFieldSet:
    """The image field set `package` builds ``target`` with."""
    images = [fs for fs in field_sets.field_sets if isinstance(fs, ImageFieldSet)]
    if not images:
        raise InvalidFieldException(
            f"{origin(request)}: {target.address} cannot be packaged as an image ({' or '.join(request.allowed)})."
        )
    return images[0]


def image_artifact(package: BuiltPackage) -> BuiltImageArtifact:
    return next(a for a in package.artifacts if isinstance(a, BuiltImageArtifact))


def packaged_dependency(
    request: ImageDependencyRequest, target: Target, package: BuiltPackage, digest: Digest
) -> ImageDependency:
    artifact = image_artifact(package)
    return ImageDependency(digest, target.address, artifact.layout, artifact.ref, request.prefix)


COMPLETE_BASE = "complete-base"


def complete_base_request(target: Target) -> ImageDependencyRequest | None:
    """The base whose blobs ``target``'s package needs to be complete, if it has a base."""
    if not target.has_field(BaseImageField) or not target[BaseImageField].value:
        return None
    return ImageDependencyRequest(
        target.address,
        BaseImageField.alias,
        target[BaseImageField].value,
        COMPLETE_BASE,
        allowed=roles.allowed(BASE),
    )


def layout_blobs(digest: Digest, layout: str) -> DigestSubset:
    """The blobs of the layout at ``layout`` in ``digest``."""
    return DigestSubset(digest, PathGlobs([f"{layout}/blobs/**"]))
