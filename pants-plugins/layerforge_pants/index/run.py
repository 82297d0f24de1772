"""`pants run` for oci_image_index: the host's platform of the index (see goals/run.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior

from layerforge_pants.index.package import OciImageIndexFieldSet


@dataclass(frozen=True)
class OciImageIndexRunFieldSet(RunFieldSet):
    required_fields = OciImageIndexFieldSet.required_fields
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED


def rules():
    return [*OciImageIndexRunFieldSet.rules()]
