"""Whether a nix_oci_image has a neighbour it could share layers with: another nix_oci_image
anywhere in the repository. Its plan batches its layer jobs so that images sharing layers
share their processes (one build per distinct layer across images); an image without one is
planned into the fewest processes instead (`nix-plan --layer-batches=per-image`, see the
tool's layer_jobs.py): the same layers, fewer processes to pay for.

The answer only decides how layer jobs are batched, never an image's bytes, so it is read
from the text of the repository's BUILD files (a `nix_oci_image(` at the start of a line),
not from their targets: that read cannot fail. Asking Pants for every target (`::`) fails
when any BUILD file elsewhere holds a broken target, and a rule that depended on a failed
query would be run again, Nix evaluation and all, on the next run. A target made by a macro
is not seen (its image is batched for itself); a commented-out one is (batched to share)."""

from __future__ import annotations

import re

from pants.engine.fs import PathGlobs

from layerforge_pants.goals import engine

#: `nix-plan`'s option for an image without a neighbour.
PER_IMAGE = "--layer-batches=per-image"
#: Pants' default `[GLOBAL].build_patterns`, anywhere (pants_ignore applies).
BUILD_FILES = PathGlobs(["**/BUILD", "**/BUILD.*"])
_TARGET = re.compile(rb"^[ \t]*nix_oci_image[ \t]*\(", re.MULTILINE)


def neighbours_in(build_files: list[bytes]) -> int:
    """How many nix_oci_image targets the BUILD files' texts declare."""
    return sum(len(_TARGET.findall(text)) for text in build_files)


async def has_neighbour() -> bool:
    """Whether the repository's BUILD files declare more than one nix_oci_image."""
    snapshot = await engine.glob_snapshot(BUILD_FILES)
    files = await engine.contents(snapshot.digest)
    return neighbours_in([f.content for f in files]) > 1
