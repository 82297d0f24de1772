"""`pants run` for oci_image_index: the host's platform of the index (see image_run)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule

from layerforge_pants.image_run import ImageRunRequest
from layerforge_pants.index_package import OciImageIndexFieldSet


@dataclass(frozen=True)
class OciImageIndexRunFieldSet(RunFieldSet):
    required_fields = OciImageIndexFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


@rule(desc="Run oci_image_index")
async def run_oci_image_index(field_set: OciImageIndexRunFieldSet) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest(field_set.address, OciImageIndexFieldSet))


def rules():
    return [*collect_rules(), *OciImageIndexRunFieldSet.rules()]
