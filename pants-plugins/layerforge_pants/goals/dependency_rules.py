"""The rule that packages an image another image names (`base_image`, `source_image`,
`rootfs_image`, `platforms`, `images`), and completing a package built on a shallow base."""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.fs import AddPrefix, Digest, MergeDigests, RemovePrefix
from pants.engine.rules import collect_rules, rule
from pants.engine.target import FieldSetsPerTargetRequest, Target, WrappedTargetRequest

from layerforge_pants.goals import dependency as dep
from layerforge_pants.goals import (
    engine,
    pull_rules,  # noqa: F401  (its rule is awaited through the engine)
)
from layerforge_pants.goals.dependency import ImageDependency, ImageDependencyRequest


async def named_target(request: ImageDependencyRequest) -> Target:
    """The target ``request`` names, if it is a kind the request allows."""
    addresses = await engine.addresses(dep.address_inputs(request))
    wrapped = await engine.target(WrappedTargetRequest(addresses[0], description_of_origin=dep.origin(request)))
    return dep.checked_kind(request, wrapped.target)


async def packaged(request: ImageDependencyRequest, target: Target) -> BuiltPackage:
    """``target`` (an image target of this repository) as `package` builds it."""
    field_sets = await engine.field_sets(FieldSetsPerTargetRequest(PackageFieldSet, [target]))
    return await engine.package(dep.image_field_set(request, target, field_sets))


async def completed(target: Target, digest: Digest, layout: str) -> Digest:
    """``digest``, the package of ``target`` with its layout at ``layout``, with the blobs of
    every base below it: a nix_oci_image on a shallow base lists the base's layers without
    their blobs. Walks the base chain down to an image without a base or a full pull."""
    base_blobs: list[Digest] = []
    request = dep.complete_base_request(target)
    while request is not None:
        base = await named_target(request)
        if dep.is_remote(base):
            pulled = await engine.pull(dep.pull_request(request, base))
            base_digest, base_layout, request = pulled.digest, pulled.layout, None
        else:
            package = await packaged(request, base)
            base_digest, base_layout = package.digest, dep.image_artifact(package).layout
            request = dep.complete_base_request(base)
        blobs = await engine.remove_prefix(
            RemovePrefix(await engine.subset(dep.layout_blobs(base_digest, base_layout)), base_layout)
        )
        base_blobs.append(await engine.add_prefix(AddPrefix(blobs, layout)))
    if not base_blobs:
        return digest
    return await engine.merge(MergeDigests([digest, *base_blobs]))


@rule(desc="Package an image another image builds on")
async def package_image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    target = await named_target(request)
    if dep.is_remote(target):
        pulled = await engine.pull(dep.pull_request(request, target))
        digest = await engine.add_prefix(AddPrefix(pulled.digest, request.prefix))
        return dep.pulled_dependency(request, target, pulled, digest)
    package = await packaged(request, target)
    layout = package.digest
    if not request.shallow:
        layout = await completed(target, package.digest, dep.image_artifact(package).layout)
    digest = await engine.add_prefix(AddPrefix(layout, request.prefix))
    return dep.packaged_dependency(request, target, package, digest)


def rules() -> list[object]:
    return [*collect_rules()]
