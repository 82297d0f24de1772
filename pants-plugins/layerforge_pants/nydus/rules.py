"""`package` of nydus_image."""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage
from pants.engine.fs import MergeDigests
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import (
    dependency_rules,  # noqa: F401  (its rule is awaited through the engine)
    engine,
)
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.goals.tool_rules import package_with
from layerforge_pants.nydus import package
from layerforge_pants.nydus.package import NydusImageFieldSet


@rule(desc="Package nydus_image")
async def package_nydus_image(field_set: NydusImageFieldSet, tool: Layerforge) -> BuiltPackage:
    names, address = field_set.names(tool), field_set.address
    images = await engine.image_dependencies(package.image_requests(field_set))
    argv = package.nydus_argv(field_set, names, images)
    input_digest = await engine.merge(MergeDigests(i.digest for i in images))
    description = f"Convert {images[0].address} to Nydus for {address}"
    return await package_with(argv, description, input_digest, field_set.layout_dir(), names)


def rules() -> list[object]:
    return [*collect_rules(), *package.rules()]
