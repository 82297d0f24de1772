"""`run` of an image: package it (complete), then the tool's `run` or `unikraft-run` of its
layout in the workspace."""

from __future__ import annotations

from pants.backend.python.util_rules.pex import VenvPexRequest
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.run import RunRequest
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import collect_rules, rule

from layerforge_pants.goals import engine
from layerforge_pants.goals.dependency_rules import completed
from layerforge_pants.goals.package import BuiltImageArtifact
from layerforge_pants.goals.run import ImageRunRequest, in_workspace, run_artifact, run_request, run_target_request
from layerforge_pants.goals.subsystem import Layerforge


async def run_layout(
    layout_digest: Digest, art: BuiltImageArtifact, tool: Layerforge, pex_env: PexEnvironment, unikernel: bool = False
) -> RunRequest:
    """The run request of the image ``art`` names in ``layout_digest`` (see :func:`run_request`)."""
    environment = in_workspace(pex_env)
    pex_request = tool.to_pex_request()
    venv_pex, python = await engine.venv_pex_and_python(
        VenvPexRequest(pex_request, environment), pex_request.interpreter_constraints
    )
    digest = await engine.merge(MergeDigests([venv_pex.digest, layout_digest]))
    return run_request(venv_pex, digest, python, environment=environment, tool=tool, art=art, unikernel=unikernel)


@rule(desc="Run an image")
async def run_image(request: ImageRunRequest, tool: Layerforge, pex_env: PexEnvironment) -> RunRequest:
    target = (await engine.target(run_target_request(request))).target
    package = await engine.package(request.package_field_set_type.create(target))
    art = run_artifact(package)
    return await run_layout(await completed(target, package.digest, art.layout), art, tool, pex_env, request.unikernel)


def rules() -> list[object]:
    return [*collect_rules()]
