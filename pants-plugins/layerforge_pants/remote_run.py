"""`pants run` for remote_oci_image: the pulled image (the host's platform of an index) run as
`REGISTRY/REPO:TAG` in the container runtime (see image_run)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule

from layerforge_pants.image_package import BuiltImageArtifact
from layerforge_pants.image_run import run_layout
from layerforge_pants.remote_pull import PulledImage, RemoteImageRequest
from layerforge_pants.remote_target import RemoteImageField, RemotePlatformsField, repository_and_tag
from layerforge_pants.subsystem import Layerforge


@dataclass(frozen=True)
class RemoteOciImageRunFieldSet(RunFieldSet):
    required_fields = (RemoteImageField,)
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    image: RemoteImageField
    platforms: RemotePlatformsField


@rule(desc="Run remote_oci_image")
async def run_remote_oci_image(
    field_set: RemoteOciImageRunFieldSet, tool: Layerforge, pex_env: PexEnvironment
) -> RunRequest:
    pulled = await Get(PulledImage, RemoteImageRequest, RemoteImageRequest.of(field_set.address, field_set.image,
                                                                              field_set.platforms))  # fmt: skip
    repository, tag = repository_and_tag(field_set.image.value or "")
    art = BuiltImageArtifact(
        relpath=pulled.layout, layout=pulled.layout, ref=pulled.ref, repository=repository, tags=(tag,)
    )
    return await run_layout(pulled.digest, art, tool, pex_env)


def rules():
    return [*collect_rules(), *RemoteOciImageRunFieldSet.rules()]
