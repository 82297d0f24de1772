"""`pants run` for unikraft_image: boot the package in QEMU (see goals/run.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior

from layerforge_pants.unikraft.package import UnikraftImageFieldSet


@dataclass(frozen=True)
class UnikraftImageRunFieldSet(RunFieldSet):
    required_fields = UnikraftImageFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


def rules():
    return [*UnikraftImageRunFieldSet.rules()]
