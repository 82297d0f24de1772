"""`pants run` for nix_oci_image (see goals/run.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior

from layerforge_pants.nix.package import NixOciImageFieldSet


@dataclass(frozen=True)
class NixOciImageRunFieldSet(RunFieldSet):
    required_fields = NixOciImageFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


def rules():
    return [*NixOciImageRunFieldSet.rules()]
