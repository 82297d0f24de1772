"""`run` of a remote_oci_image: the pulled image, tagged as its `image` field names it."""

from __future__ import annotations

from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.run import RunRequest
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import (
    engine,
    pull_rules,  # noqa: F401  (its rule is awaited through the engine)
)
from layerforge_pants.goals.run_rules import run_layout
from layerforge_pants.goals.subsystem import Layerforge
from layerforge_pants.remote.run import RemoteOciImageRunFieldSet, pull_request, remote_artifact


@rule(desc="Run remote_oci_image")
async def run_remote_oci_image(
    field_set: RemoteOciImageRunFieldSet, tool: Layerforge, pex_env: PexEnvironment
) -> RunRequest:
    pulled = await engine.pull(pull_request(field_set))
    return await run_layout(pulled.digest, remote_artifact(field_set, pulled), tool, pex_env)


def rules() -> list[object]:
    return [*collect_rules(), *RemoteOciImageRunFieldSet.rules()]
