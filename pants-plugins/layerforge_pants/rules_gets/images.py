"""Rules for images other images and `run` use: pulls, image dependencies, complete layouts,
running a layout (Pants 2.17-2.29: `Get`)."""

from __future__ import annotations

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import VenvPex, VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment, PythonExecutable
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.run import RunRequest
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, Digest, DigestSubset, MergeDigests, RemovePrefix
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSetsPerTarget, FieldSetsPerTargetRequest, WrappedTarget, WrappedTargetRequest

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
from layerforge_pants.rules_gets.tool import run_layerforge
from layerforge_pants.subsystem import Layerforge


@rule(desc="Pull a remote_oci_image")
async def pull_remote_image(request: RemoteImageRequest) -> PulledImage:
    result = await run_layerforge(pull_process(request), request.address, PULL_FIELDS)
    return pulled_image(await Get(Digest, DigestSubset, pulled_layout(result)))


@rule(desc="Package an image another image builds on")
async def package_image_dependency(request: ImageDependencyRequest) -> ImageDependency:
    addresses = await Get(Addresses, UnparsedAddressInputs, dep.address_inputs(request))
    where = dep.origin(request)
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(addresses[0], description_of_origin=where))
    target = dep.checked_kind(request, wrapped.target)
    if dep.is_remote(target):
        pulled = await Get(PulledImage, RemoteImageRequest, dep.pull_request(request, target))
        digest = await Get(Digest, AddPrefix(pulled.digest, request.prefix))
        return dep.pulled_dependency(request, target, pulled, digest)
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [target]))
    package = await Get(BuiltPackage, PackageFieldSet, dep.image_field_set(request, target, field_sets))
    layout = package.digest
    if not request.shallow:
        complete = CompleteLayoutRequest(target.address, package.digest, dep.image_artifact(package).layout)
        layout = (await Get(CompleteLayout, CompleteLayoutRequest, complete)).digest
    digest = await Get(Digest, AddPrefix(layout, request.prefix))
    return dep.packaged_dependency(request, target, package, digest)


@rule(desc="Complete an image built on a shallow base")
async def complete_layout(request: CompleteLayoutRequest) -> CompleteLayout:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="a complete image"))
    base_request = dep.complete_base_request(wrapped.target)
    if base_request is None:
        return CompleteLayout(request.digest)
    base = await Get(ImageDependency, ImageDependencyRequest, base_request)
    blobs = await Get(Digest, DigestSubset, dep.base_blobs(base))
    moved = await Get(Digest, AddPrefix(await Get(Digest, RemovePrefix(blobs, dep.base_dir(base))), request.layout))
    return CompleteLayout(await Get(Digest, MergeDigests([request.digest, moved])))


async def run_layout(
    layout_digest: Digest, art: BuiltImageArtifact, tool: Layerforge, pex_env: PexEnvironment, unikernel: bool = False
) -> RunRequest:
    """The run request of the image ``art`` names in ``layout_digest`` (see :func:`run_request`)."""
    environment = in_workspace(pex_env)
    pex_request = tool.to_pex_request()
    venv_pex, python = await MultiGet(
        Get(VenvPex, VenvPexRequest(pex_request, environment)),
        Get(PythonExecutable, InterpreterConstraints, pex_request.interpreter_constraints),
    )
    digest = await Get(Digest, MergeDigests([venv_pex.digest, layout_digest]))
    return run_request(venv_pex, digest, python, environment=environment, tool=tool, art=art, unikernel=unikernel)


@rule(desc="Run an image")
async def run_image(request: ImageRunRequest, tool: Layerforge, pex_env: PexEnvironment) -> RunRequest:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest, run_target_request(request))
    package = await Get(BuiltPackage, PackageFieldSet, request.package_field_set_type.create(wrapped.target))
    art = run_artifact(package)
    complete = await Get(CompleteLayout, CompleteLayoutRequest(request.address, package.digest, art.layout))
    return await run_layout(complete.digest, art, tool, pex_env, unikernel=request.unikernel)


@rule(desc="Run remote_oci_image")
async def run_remote_oci_image(
    field_set: RemoteOciImageRunFieldSet, tool: Layerforge, pex_env: PexEnvironment
) -> RunRequest:
    pulled = await Get(PulledImage, RemoteImageRequest, pull_request(field_set))
    return await run_layout(pulled.digest, remote_artifact(field_set, pulled), tool, pex_env)


def rules():
    return collect_rules()
