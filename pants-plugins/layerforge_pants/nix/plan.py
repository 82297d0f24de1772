"""What `pants package` reads from a nix_oci_image's plan file (written by `layerforge
nix-plan`): its schema version and its layer jobs, each a ready `nix-layer` argv and the
layer directories it writes (one per layer: a job builds one layer or a batch of small ones).
Nothing else of the plan is read here: the assembly reads the plan itself.

Plain Python (no engine types), so the rule stays a few lines and tests import this module
without Pants."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PLAN = "plan.json"
#: The plan schema this plugin reads (python/layerforge/images/nix/plan.py's PLAN_VERSION;
#: tests/test_nix_jobs.py holds the two to one another).
PLAN_VERSION = 5
KINDS = ("store-paths", "root", "snapshotter")
#: A job's output directory: one plain name in the process's sandbox.
_OUT = re.compile(r"^(?!\.\.?\Z)[A-Za-z0-9._-]+\Z")


class PlanUnreadable(Exception):
    """The plan file is of another schema version or not a plan: one line naming the file."""


@dataclass(frozen=True)
class PlannedLayer:
    """One layer job of the plan: a `layerforge nix-layer` argv writing its layers, in image
    order, into the directories `outs`."""

    kind: str
    argv: tuple[str, ...]
    outs: tuple[str, ...]


def planned_layers(content: bytes, name: str) -> tuple[PlannedLayer, ...]:
    """The layer jobs of the plan file `name` (its bytes `content`), in image order."""
    try:
        plan = json.loads(content)
    except ValueError as e:
        raise PlanUnreadable(f"{name} is not a nix-image plan: {e}") from None
    version = plan.get("version") if isinstance(plan, dict) else None
    if version != PLAN_VERSION:
        raise PlanUnreadable(
            f"{name} is a nix-image plan of version {version!r}; this plugin reads version {PLAN_VERSION} "
            "(the layerforge tool and the plugin come from different releases)"
        )
    jobs = plan.get("jobs")
    if not isinstance(jobs, list):
        raise PlanUnreadable(f"{name} has no list of layer jobs")
    return tuple(_job(job, name, i) for i, job in enumerate(jobs))


def _job(job: object, name: str, index: int) -> PlannedLayer:
    if isinstance(job, dict):
        kind, argv, outs = job.get("kind"), job.get("argv"), job.get("outs")
        if (
            kind in KINDS
            and isinstance(outs, list)
            and outs
            and all(isinstance(o, str) and _OUT.match(o) for o in outs)
            and len(set(outs)) == len(outs)
            and isinstance(argv, list)
            and argv[:1] == ["nix-layer"]
            and all(isinstance(a, str) for a in argv)
        ):
            return PlannedLayer(kind, tuple(argv), tuple(outs))
    raise PlanUnreadable(f"{name}: layer job {index} is not a kind, a nix-layer argv and distinct output directories")
