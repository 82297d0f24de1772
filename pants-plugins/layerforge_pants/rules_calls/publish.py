"""The `publish` rule of every image kind (Pants 2.30+: call-by-name)."""

from __future__ import annotations

from pants.core.goals.publish import PublishProcesses
from pants.engine.intrinsics import merge_digests
from pants.engine.rules import collect_rules, concurrently, implicitly, rule

from layerforge_pants.publish import PublishImageRequest, merged_packages, publish_processes, pushes, to_push
from layerforge_pants.rules_calls.tool import layerforge_process
from layerforge_pants.subsystem import Layerforge


@rule(desc="Push images")
async def publish_images(request: PublishImageRequest, tool: Layerforge) -> PublishProcesses:
    jobs = pushes(request, tool)
    package_digest = await merge_digests(merged_packages(request))
    processes = await concurrently(layerforge_process(p, **implicitly()) for p in to_push(jobs, package_digest))
    return publish_processes(jobs, processes)


def rules():
    return collect_rules()
