"""Rules for images other images and `run` use: pulls, image dependencies, complete layouts,
running a layout (Pants 2.30+: call-by-name)."""

from __future__ import annotations

from pants.backend.python.util_rules.pex import VenvPexRequest, create_venv_pex
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.package import PackageFieldSet, build_package
from pants.core.goals.run import RunRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests, RemovePrefix
from pants.engine.internals.graph import find_valid_field_sets, resolve_target, resolve_unparsed_address_inputs
from pants.engine.intrinsics import add_prefix, digest_subset_to_digest, merge_digests, remove_prefix
from pants.engine.rules import collect_rules, implicitly, rule
from pants.engine.target import FieldSetsPerTargetRequest, WrappedTargetRequest

from layerforge_pants import image_dependency as dep
from layerforge_pants.image_dependency import (
    CompleteLayout,
    CompleteLayoutRequest,
    ImageDependency,
    ImageDependencyRequest,
)
from layerforge_pants.image_package import BuiltImageArtifact
from layerforge_pants.image_run import ImageRunRequest, in_workspace, run_artifact, run_request, run_target_request
from layerforge_pants.remote_pull import (
    PULL_FIELDS,
    PulledImage,
    RemoteImageRequest,
    pull_process,
    pulled_image,
    pulled_layout,
)
from layerforge_pants.remote_run import RemoteOciImageRunFieldSet, pull_request, remote_artifact
from layerforge_pants.rules_calls.tool import run_layerforge
from layerforge_pants.subsystem import Layerforge


@rule(desc="Pull a remote_oci_image")
async def pull_remote_image(request: RemoteImageRequest) -> PulledImage:
    result = await run_layerforge(pull_process(request), request.address, PULL_FIELDS)
    return pulled_image(await digest_subset_to_digest(pulled_layout(result)))


@rule(desc="Package an image another image builds on")
async def package_image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    addresses = await resolve_unparsed_address_inputs(dep.address_inputs(request), **implicitly())
    where = dep.origin(request)
    wrapped = await resolve_target(WrappedTargetRequest(addresses[0], description_of_origin=where), **implicitly())
    target = dep.checked_kind(request, wrapped.target)
    if dep.is_remote(target):
        pulled = await pull_remote_image(dep.pull_request(request, target))
        digest = await add_prefix(AddPrefix(pulled.digest, request.prefix))
        return dep.pulled_dependency(request, target, pulled, digest)
    field_sets = await find_valid_field_sets(FieldSetsPerTargetRequest(PackageFieldSet, [target]), **implicitly())
    package = await build_package(**implicitly({dep.image_field_set(request, target, field_sets): PackageFieldSet}))
    layout = package.digest
    if not request.shallow:
        complete = CompleteLayoutRequest(target.address, package.digest, dep.image_artifact(package).layout)
        layout = (await complete_layout(complete)).digest
    digest = await add_prefix(AddPrefix(layout, request.prefix))
    return dep.packaged_dependency(request, target, package, digest)


@rule(desc="Complete an image built on a shallow base")
async def complete_layout(request: CompleteLayoutRequest) -> CompleteLayout:
    where = WrappedTargetRequest(request.address, description_of_origin="a complete image")
    base_request = dep.complete_base_request((await resolve_target(where, **implicitly())).target)
    if base_request is None:
        return CompleteLayout(request.digest)
    base = await package_image_dependency(base_request)
    blobs = await digest_subset_to_digest(dep.base_blobs(base))
    moved = await add_prefix(AddPrefix(await remove_prefix(RemovePrefix(blobs, dep.base_dir(base))), request.layout))
    return CompleteLayout(await merge_digests(MergeDigests([request.digest, moved])))


async def run_layout(
    layout_digest: Digest, art: BuiltImageArtifact, tool: Layerforge, pex_env: PexEnvironment, unikernel: bool = False
) -> RunRequest:
    """The run request of the image ``art`` names in ``layout_digest`` (see :func:`run_request`)."""
    environment = in_workspace(pex_env)
    pex_request = tool.to_pex_request()
    venv_pex = await create_venv_pex(VenvPexRequest(pex_request, environment), **implicitly())
    digest = await merge_digests(MergeDigests([venv_pex.digest, layout_digest]))
    return run_request(venv_pex, digest, None, environment=environment, tool=tool, art=art, unikernel=unikernel)


@rule(desc="Run an image")
async def run_image(request: ImageRunRequest, tool: Layerforge, pex_env: PexEnvironment) -> RunRequest:
    wrapped = await resolve_target(run_target_request(request), **implicitly())
    package = await build_package(
        **implicitly({request.package_field_set_type.create(wrapped.target): PackageFieldSet})
    )
    art = run_artifact(package)
    complete = await complete_layout(CompleteLayoutRequest(request.address, package.digest, art.layout))
    return await run_layout(complete.digest, art, tool, pex_env, unikernel=request.unikernel)


@rule(desc="Run remote_oci_image")
async def run_remote_oci_image(
    field_set: RemoteOciImageRunFieldSet, tool: Layerforge, pex_env: PexEnvironment
) -> RunRequest:
    pulled = await pull_remote_image(pull_request(field_set))
    return await run_layout(pulled.digest, remote_artifact(field_set, pulled), tool, pex_env)


def rules():
    return collect_rules()
