"""Pulling a remote_oci_image: one `layerforge pull` process per image and platform set,
keyed by the pinned digest (cacheable, so a remote cache shares the pull)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestSubset, PathGlobs
from pants.engine.rules import Get, collect_rules, rule

from layerforge_pants.remote_target import RemoteImageField, RemotePlatformsField
from layerforge_pants.tool import LayerforgeProcess, run_layerforge

LAYOUT = "remote"
REF = "pulled"


@dataclass(frozen=True)
class RemoteImageRequest:
    address: Address
    image: str
    platforms: tuple[str, ...]

    @classmethod
    def of(cls, address: Address, image: RemoteImageField, platforms: RemotePlatformsField) -> RemoteImageRequest:
        return cls(address, image.value or "", tuple(platforms.value or ()))


@dataclass(frozen=True)
class PulledImage:
    """The pulled OCI layout (at ``layout`` in ``digest``) and the ref naming the image in it."""

    digest: Digest
    layout: str
    ref: str


@rule(desc="Pull a remote_oci_image")
async def pull_remote_image(request: RemoteImageRequest) -> PulledImage:
    which = [a for p in request.platforms for a in ("--platform", p)] or ["--all-platforms"]
    result = await run_layerforge(
        LayerforgeProcess(
            argv=("pull", request.image, "--out", LAYOUT, "--tag", REF, *which),
            description=f"Pull {request.image} for {request.address}",
            input_digest=EMPTY_DIGEST,
            output_directories=(LAYOUT,),
        ),
        request.address,
        {"--platform": "platforms", "IMAGE": "image"},
    )
    layout = await Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{LAYOUT}/**"])))
    return PulledImage(layout, LAYOUT, REF)


def rules():
    return collect_rules()
