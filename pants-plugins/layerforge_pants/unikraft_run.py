"""`pants run` for unikraft_image: boot the package in QEMU (see image_run)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule

from layerforge_pants.image_run import ImageRunRequest
from layerforge_pants.unikraft_package import UnikraftImageFieldSet


@dataclass(frozen=True)
class UnikraftImageRunFieldSet(RunFieldSet):
    required_fields = UnikraftImageFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


@rule(desc="Boot unikraft_image")
async def run_unikraft_image(field_set: UnikraftImageRunFieldSet) -> RunRequest:
    return await Get(RunRequest, ImageRunRequest(field_set.address, UnikraftImageFieldSet, unikernel=True))


def rules():
    return [*collect_rules(), *UnikraftImageRunFieldSet.rules()]
