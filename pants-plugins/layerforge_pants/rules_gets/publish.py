"""The `publish` rule of every image kind (Pants 2.17-2.29: `Get`)."""

from __future__ import annotations

from pants.core.goals.publish import PublishProcesses
from pants.engine.fs import Digest, MergeDigests
from pants.engine.process import Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from layerforge_pants.publish import PublishImageRequest, merged_packages, publish_processes, pushes, to_push
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.tool import LayerforgeProcess


@rule(desc="Push images")
async def publish_images(request: PublishImageRequest, tool: Layerforge) -> PublishProcesses:
    jobs = pushes(request, tool)
    package_digest = await Get(Digest, MergeDigests, merged_packages(request))
    processes = await MultiGet(Get(Process, LayerforgeProcess, p) for p in to_push(jobs, package_digest))
    return publish_processes(jobs, processes)


def rules():
    return collect_rules()
