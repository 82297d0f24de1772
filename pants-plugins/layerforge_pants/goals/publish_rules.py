"""The `publish` rule of every image kind (see `publish.py`)."""

from __future__ import annotations

import os

from pants.base.build_environment import get_buildroot
from pants.core.goals.publish import PublishProcesses
from pants.core.util_rules.distdir import DistDir
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import (
    engine,
    tool_rules,  # noqa: F401  (its rule is awaited through the engine)
)
from layerforge_pants.goals.publish import PublishImageRequest, merged_packages, publish_processes, pushes, to_push
from layerforge_pants.goals.subsystem import Layerforge


@rule(desc="Push images")
async def publish_images(request: PublishImageRequest, tool: Layerforge, dist: DistDir) -> PublishProcesses:
    records = os.path.join(get_buildroot(), dist.relpath) if tool.publish_records else None
    jobs = pushes(request, tool, records)
    package_digest = await engine.merge(merged_packages(request))
    processes = await engine.layerforge_processes(to_push(jobs, package_digest))
    return publish_processes(jobs, processes)


def rules() -> list[object]:
    return [*collect_rules()]
