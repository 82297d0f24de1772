"""`pants run` for remote_oci_image: the pulled image (the host's platform of an index) run as
`REGISTRY/REPO:TAG` in the container runtime (see goals/run.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior

from layerforge_pants.goals.package import BuiltImageArtifact
from layerforge_pants.goals.pull import PulledImage, RemoteImageRequest
from layerforge_pants.remote.target import RemoteImageField, RemotePlatformsField, repository_and_tag


@dataclass(frozen=True)
class RemoteOciImageRunFieldSet(RunFieldSet):
    required_fields = (RemoteImageField,)
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    image: RemoteImageField
    platforms: RemotePlatformsField


def remote_artifact(field_set: RemoteOciImageRunFieldSet, pulled: PulledImage) -> BuiltImageArtifact:
    """The pulled image, tagged as its `image` field names it."""
    repository, tag = repository_and_tag(field_set.image.value or "")
    return BuiltImageArtifact(
        relpath=pulled.layout, layout=pulled.layout, ref=pulled.ref, repository=repository, tags=(tag,)
    )


def pull_request(field_set: RemoteOciImageRunFieldSet) -> RemoteImageRequest:
    return RemoteImageRequest.of(field_set.address, field_set.image.value, field_set.platforms.value)


def rules():
    return [*RemoteOciImageRunFieldSet.rules()]
