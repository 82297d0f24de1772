"""Pulling a remote_oci_image: one `layerforge pull` process per image and platform set,
keyed by the pinned digest (cacheable, so a remote cache shares the pull). A shallow pull
(manifests and configs) is what a nix_oci_image needs to package on the image; whatever reads
layer bytes asks for the full one."""

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
    #: Manifests and configs only (`layerforge pull --shallow`): enough to build on, not to read layers.
    shallow: bool = False

    @classmethod
    def of(
        cls, address: Address, image: RemoteImageField, platforms: RemotePlatformsField, shallow: bool = False
    ) -> RemoteImageRequest:
        return cls(address, image.value or "", tuple(platforms.value or ()), shallow)


@dataclass(frozen=True)
class PulledImage:
    """The pulled OCI layout (at ``layout`` in ``digest``) and the ref naming the image in it."""

    digest: Digest
    layout: str
    ref: str


@rule(desc="Pull a remote_oci_image")
async def pull_remote_image(request: RemoteImageRequest) -> PulledImage:
    which = [a for p in request.platforms for a in ("--platform", p)] or ["--all-platforms"]
    shallow = ("--shallow",) if request.shallow else ()
    result = await run_layerforge(
        LayerforgeProcess(
            argv=("pull", request.image, "--out", LAYOUT, "--tag", REF, *which, *shallow),
            description=f"Pull {request.image}{' (shallow)' if request.shallow else ''} for {request.address}",
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
