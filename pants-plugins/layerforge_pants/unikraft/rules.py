"""`package` and `run` of unikraft_image."""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.fs import MergeDigests
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import dependency_rules, engine, run_rules  # noqa: F401  (rules awaited through the engine)
from layerforge_pants.goals.run import ImageRunRequest
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.tool_rules import dependency_files, package_with
from layerforge_pants.unikraft import package
from layerforge_pants.unikraft.package import UnikraftImageFieldSet
from layerforge_pants.unikraft.run import UnikraftImageRunFieldSet


@rule(desc="Package unikraft_image")
async def package_unikraft_image(field_set: UnikraftImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    files = await dependency_files(address)
    images = await engine.image_dependencies(package.image_requests(field_set))
    argv = [*package.unikraft_argv(field_set, names, files), *package.image_argv(images)]
    input_digest = await engine.merge(MergeDigests([files.digest, *(i.digest for i in images)]))
    layout = field_set.layout_dir()
    return await package_with(argv, f"Package the unikernel {address}", input_digest, layout, names)


@rule(desc="Boot unikraft_image")
async def run_unikraft_image(field_set: UnikraftImageRunFieldSet) -> RunRequest:
    return await engine.run_image(ImageRunRequest(field_set.address, UnikraftImageFieldSet, unikernel=True))


def rules() -> list[object]:
    return [*collect_rules(), *package.rules(), *UnikraftImageRunFieldSet.rules()]
