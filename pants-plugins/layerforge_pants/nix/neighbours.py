"""Whether a nix_oci_image has a neighbour it could share layers with: another nix_oci_image
anywhere in the repository. Its plan batches its layer jobs so that images sharing layers
share their processes (one build per distinct layer across images); an image without one is
planned into the fewest processes instead (`nix-plan --layer-batches=per-image`, see the
tool's layer_jobs.py): the same layers, fewer processes to pay for."""

from __future__ import annotations

from pants.base.specs import RawSpecsWithoutFileOwners, RecursiveGlobSpec
from pants.engine.addresses import Address

from layerforge_pants.goals import engine
from layerforge_pants.nix.package import NixOciImageFieldSet

#: `nix-plan`'s option for an image without a neighbour.
PER_IMAGE = "--layer-batches=per-image"


async def has_neighbour(address: Address) -> bool:
    """Whether a nix_oci_image other than ``address`` is in the repository; True when that is
    unknown (a BUILD file elsewhere does not parse): sharing is the safe default."""
    specs = RawSpecsWithoutFileOwners(
        recursive_globs=(RecursiveGlobSpec(""),), description_of_origin="the nix_oci_images of the repository"
    )
    try:
        targets = await engine.targets(specs)
    except Exception:  # a broken BUILD file is reported where it is asked for, not here
        return True
    return any(t.address != address and NixOciImageFieldSet.is_applicable(t) for t in targets)
