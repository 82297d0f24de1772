"""`pants run` for nix_oci_image (see image_run)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule

from layerforge_pants.image_run import ImageRunRequest
from layerforge_pants.nix_package import NixOciImageFieldSet


@dataclass(frozen=True)
class NixOciImageRunFieldSet(RunFieldSet):
    required_fields = NixOciImageFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


@rule(desc="Run nix_oci_image")
async def run_nix_oci_image(field_set: NixOciImageRunFieldSet) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest(field_set.address, NixOciImageFieldSet))


def rules():
    return [*collect_rules(), *NixOciImageRunFieldSet.rules()]
