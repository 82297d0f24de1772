"""One plan process for the images of one shared evaluation (see shared_evaluation.py): a
monorepo's images over one Nix file are planned by one `layerforge nix-plans` process, not one
`nix-plan` each (a process costs a Python start, a sandbox and Pants' bookkeeping; a plan
itself is a few Nix queries).

Each image's `nix-plan` argv is the one it would run alone (its fields, the derivations the
shared evaluation gave it), with its own `--out`; the process's input is the file of all those
argvs, so every image that reads the Nix file asks for the same process, which Pants runs once
and caches under all of them (a change in any image re-runs it, as it re-runs the shared
evaluation). Images with a base image (their plan reads the base's layout) and images the
shared evaluation gave no answer for plan alone. If the process fails, each image plans alone
as before, so an error names the image and its field.

Plain Python (no engine types), as plan.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pants.engine.addresses import Address

from layerforge_pants.goals.tool_option import option
from layerforge_pants.nix.plan import PLAN

#: The file of argvs in the process's sandbox.
ARGVS = "plans.json"


@dataclass(frozen=True)
class PlanBatch:
    """The argv file's bytes, the plan file of each image (in address order), and the Nix
    file they read (for the description)."""

    document: bytes
    plans: tuple[tuple[Address, str], ...]
    nix_file: str

    @property
    def outs(self) -> tuple[str, ...]:
        return tuple(out for _, out in self.plans)

    def plan_of(self, address: Address) -> str | None:
        return next((out for a, out in self.plans if a == address), None)

    @property
    def description(self) -> str:
        return f"Plan the layers of {len(self.plans)} images that read {self.nix_file}"


def plan_batch(nix_file: str, images: Iterable[tuple[Address, Callable[[], list[str] | None]]]) -> PlanBatch | None:
    """The batch of ``images``: each its address and a function giving its ``nix-plan`` argv
    as it would run alone (``--out`` the plan file first), or None (or an exception) when it
    plans alone. None when fewer than two images are left."""
    argvs: list[tuple[Address, list[str]]] = []
    for address, argv_of in images:
        try:
            argv = argv_of()
        except Exception:  # a field an image's own plan reports: it plans alone
            continue
        if argv is None or argv[:2] != ["nix-plan", option("--out", PLAN)]:
            continue
        argvs.append((address, argv[2:]))
    argvs.sort(key=lambda a: a[0].spec)
    if len(argvs) < 2:
        return None
    plans = tuple((address, f"plan-{i}.json") for i, (address, _) in enumerate(argvs))
    document = {"plans": [[option("--out", out), *argv] for (_, out), (_, argv) in zip(plans, argvs)]}
    return PlanBatch(json.dumps(document, sort_keys=True).encode(), plans, nix_file)
