"""`package` and `run` of oci_image_index."""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.fs import MergeDigests
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import dependency_rules, engine, run_rules  # noqa: F401  (rules awaited through the engine)
from layerforge_pants.goals.run import ImageRunRequest
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.tool_rules import package_with
from layerforge_pants.index import package
from layerforge_pants.index.package import OciImageIndexFieldSet
from layerforge_pants.index.run import OciImageIndexRunFieldSet


@rule(desc="Package oci_image_index")
async def package_oci_image_index(field_set: OciImageIndexFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    images = await engine.image_dependencies(package.image_requests(field_set))
    argv = package.index_argv(field_set, names, images)
    input_digest = await engine.merge(MergeDigests(i.digest for i in images))
    return await package_with(argv, f"Package the image index {address}", input_digest, field_set.layout_dir(), names)


@rule(desc="Run oci_image_index")
async def run_oci_image_index(field_set: OciImageIndexRunFieldSet) -> RunRequest:
    return await engine.run_image(ImageRunRequest(field_set.address, OciImageIndexFieldSet))


def rules() -> list[object]:
    return [*collect_rules(), *package.rules(), *OciImageIndexRunFieldSet.rules()]
