"""The `publish` rule of every image kind (see `publish.py`)."""

from __future__ import annotations

from pants.core.goals.publish import PublishProcesses
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import (
    engine,
    tool_rules,  # noqa: F401  (its rule is awaited through the engine)
)
from layerforge_pants.goals.publish import PublishImageRequest, merged_packages, publish_processes, pushes, to_push
from layerforge_pants.goals.subsystem import Layerforge


@rule(desc="Push images")
async def publish_images(request: PublishImageRequest, tool: Layerforge) -> PublishProcesses:
    jobs = pushes(request, tool)
    package_digest = await engine.merge(merged_packages(request))
    processes = await engine.layerforge_processes(to_push(jobs, package_digest))
    return publish_processes(jobs, processes)


def rules() -> list[object]:
    return [*collect_rules()]
