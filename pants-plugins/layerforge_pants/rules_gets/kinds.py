"""`package` and `run` rules of unikraft_image, nydus_image and oci_image_index (Pants
2.17-2.29: `Get`)."""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from layerforge_pants import index_package, nydus_package, unikraft_package
from layerforge_pants.image_dependency import ImageDependency, ImageDependencyRequest
from layerforge_pants.image_run import ImageRunRequest
from layerforge_pants.index_package import OciImageIndexFieldSet
from layerforge_pants.index_run import OciImageIndexRunFieldSet
from layerforge_pants.nydus_package import NydusImageFieldSet
from layerforge_pants.rules_gets.tool import dependency_files, package_with
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.unikraft_package import UnikraftImageFieldSet
from layerforge_pants.unikraft_run import UnikraftImageRunFieldSet


@rule(desc="Package unikraft_image")
async def package_unikraft_image(field_set: UnikraftImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    files = await dependency_files(address)
    requests = unikraft_package.image_requests(field_set)
    images = await MultiGet(Get(ImageDependency, ImageDependencyRequest, r) for r in requests)
    argv = [*unikraft_package.unikraft_argv(field_set, names, files), *unikraft_package.image_argv(images)]
    input_digest = await Get(Digest, MergeDigests([files.digest, *(i.digest for i in images)]))
    layout = field_set.layout_dir()
    return await package_with(argv, f"Package the unikernel {address}", input_digest, layout, names)


@rule(desc="Package nydus_image")
async def package_nydus_image(field_set: NydusImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    requests = nydus_package.image_requests(field_set)
    images = await MultiGet(Get(ImageDependency, ImageDependencyRequest, r) for r in requests)
    argv = nydus_package.nydus_argv(field_set, names, images)
    input_digest = await Get(Digest, MergeDigests(i.digest for i in images))
    description = f"Convert {images[0].address} to Nydus for {address}"
    return await package_with(argv, description, input_digest, field_set.layout_dir(), names)


@rule(desc="Package oci_image_index")
async def package_oci_image_index(field_set: OciImageIndexFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    requests = index_package.image_requests(field_set)
    images = await MultiGet(Get(ImageDependency, ImageDependencyRequest, r) for r in requests)
    argv = index_package.index_argv(field_set, names, images)
    input_digest = await Get(Digest, MergeDigests(i.digest for i in images))
    return await package_with(argv, f"Package the image index {address}", input_digest, field_set.layout_dir(), names)


@rule(desc="Boot unikraft_image")
async def run_unikraft_image(field_set: UnikraftImageRunFieldSet) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest(field_set.address, UnikraftImageFieldSet, unikernel=True))


@rule(desc="Run oci_image_index")
async def run_oci_image_index(field_set: OciImageIndexRunFieldSet) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest(field_set.address, OciImageIndexFieldSet))


def rules():
    return collect_rules()
