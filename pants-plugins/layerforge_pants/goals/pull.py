"""Pulling an image (a remote_oci_image): one `layerforge pull` process per image and platform set,
keyed by the pinned digest (cacheable, so a remote cache shares the pull). A registry that wants
a login or a CA the cacheable pull does not see is asked again by an uncached pull that sees
`[layerforge].registry_env_vars` (which so never enter a cache key). A shallow pull
(manifests and configs) is what a nix_oci_image needs to package on the image; whatever reads
layer bytes asks for the full one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestSubset, PathGlobs
from pants.engine.process import FallibleProcessResult, ProcessCacheScope
from pants.engine.target import Target

from layerforge_pants.goals.tool import LayerforgeProcess
from layerforge_pants.goals.tool_option import option

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
        cls, address: Address, image: str | None, platforms: Iterable[str] | None, shallow: bool = False
    ) -> RemoteImageRequest:
        return cls(address, image or "", tuple(platforms or ()), shallow)


class PulledTarget(Target):
    """A target whose image is pulled from a registry, not built: it says what to pull."""

    def pull_request(self, shallow: bool = False) -> RemoteImageRequest:
        raise NotImplementedError(f"{type(self).__name__} does not say what to pull")


@dataclass(frozen=True)
class PulledImage:
    """The pulled OCI layout (at ``layout`` in ``digest``) and the ref naming the image in it."""

    digest: Digest
    layout: str
    ref: str


#: The fields the options of `layerforge pull` come from.
PULL_FIELDS = {"--platform": "platforms", "IMAGE": "image"}


def pull_process(request: RemoteImageRequest, registry: bool = False) -> LayerforgeProcess:
    """The pull of ``request``: cacheable, or (``registry``) uncached with the registry environment."""
    which = [option("--platform", p) for p in request.platforms] or ["--all-platforms"]
    shallow = ("--shallow",) if request.shallow else ()
    return LayerforgeProcess(
        argv=("pull", option("--out", LAYOUT), option("--tag", REF), *which, *shallow, "--", request.image),
        description=f"Pull {request.image}{' (shallow)' if request.shallow else ''} for {request.address}"
        + (" (with the registry's login and trust)" if registry else ""),
        input_digest=EMPTY_DIGEST,
        output_directories=(LAYOUT,),
        cache_scope=ProcessCacheScope.PER_SESSION if registry else ProcessCacheScope.SUCCESSFUL,
        registry=registry,
    )


def pulled_layout(result: FallibleProcessResult) -> DigestSubset:
    return DigestSubset(result.output_digest, PathGlobs([f"{LAYOUT}/**"]))


def pulled_image(layout: Digest) -> PulledImage:
    return PulledImage(layout, LAYOUT, REF)
