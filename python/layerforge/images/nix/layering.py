"""Deciding which store paths share a layer.

Strategies (``--layering``):

* ``per-path``: one layer per store path: the most cache-friendly; refused past the budget.
* ``popularity`` (default): if the closure fits the budget, one layer per path; otherwise
  paths are taken by *size-weighted popularity* ((dependants + 1) x narSize), each together
  with its dependencies, while the budget lasts, and the rest share one layer on top.
  Weighting by size keeps the bytes other images can share in layers of their own; the
  merged layer ends up holding small, image-specific paths.

Layers are stacked dependencies first, so every layer's store paths find their whole closure
in that layer or below it.
* explicit groups (``--layer-group P...``): each group is one layer holding exactly the
  paths listed (the same group gives the same layer in every image); the remaining paths
  are laid out by popularity in the remaining budget.

Everything is sorted by content, never by argument order or hash-map order, so the layers
depend only on the closure and the options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerforge.errors import LayerforgeError
from layerforge.images.nix.closure import Closure
from layerforge.images.nix.popularity import dependants

STRATEGIES = ("popularity", "per-path")


@dataclass(frozen=True)
class LayerGroup:
    """The store paths of one layer, sorted."""

    paths: tuple[str, ...]
    kind: str  # "path", "group" or "merged"


def plan_layers(
    closure: Closure,
    *,
    strategy: str,
    budget: int,
    groups: Sequence[Sequence[str]] = (),
) -> list[LayerGroup]:
    """Layers bottom-to-top for ``closure`` in at most ``budget`` layers."""
    if strategy not in STRATEGIES:
        raise LayerforgeError(f"--layering: unknown strategy {strategy!r} (expected {' or '.join(STRATEGIES)})")
    if budget < 1:
        raise LayerforgeError(f"no layer budget left for the closure (budget {budget})")
    counts = dependants(closure)

    explicit = _explicit_groups(closure, groups)
    grouped = {p for g in explicit for p in g.paths}
    remaining = [p for p in closure.infos if p not in grouped]
    left = budget - len(explicit)
    if remaining and left < 1:
        raise LayerforgeError(f"{len(explicit)} --layer-group layers leave no room for the other paths")

    if strategy == "per-path" or len(remaining) <= left:
        if len(remaining) > left:
            raise LayerforgeError(
                f"--layering per-path needs {len(remaining) + len(explicit)} layers but only {budget} are "
                "allowed here; raise --max-layers or use --layering popularity"
            )
        singles = [LayerGroup((p,), "path") for p in remaining]
        merged: list[LayerGroup] = []
    else:
        own = _select_own_layers(closure, remaining, counts, slots=left - 1)
        singles = [LayerGroup((p,), "path") for p in sorted(own)]
        merged = [LayerGroup(tuple(sorted(p for p in remaining if p not in own)), "merged")]
    return _stack(closure, [*explicit, *singles], counts) + merged


def _select_own_layers(closure: Closure, remaining: list[str], counts: dict[str, int], slots: int) -> set[str]:
    """Greedy by size-weighted popularity; a path only gets its own layer together with its
    dependencies, so the chosen set is closed downward and the merged rest (on top) upward:
    every layer's dependencies sit in it or below it."""
    pool = set(remaining)
    score = {p: (counts[p] + 1) * max(closure.infos[p].nar_size, 1) for p in remaining}
    own: set[str] = set()
    for p in sorted(remaining, key=lambda q: (-score[q], q)):
        if p in own:
            continue
        need = (closure.closure_of([p]) & pool) - own
        if len(own) + len(need) <= slots:
            own |= need
    return own


def _stack(closure: Closure, layers: list[LayerGroup], counts: dict[str, int]) -> list[LayerGroup]:
    """Layers bottom-to-top: dependencies before dependants (topological), ties by popularity
    then content; a dependency cycle through explicit groups is broken by the same key."""
    owner = {p: i for i, g in enumerate(layers) for p in g.paths}
    deps: list[set[int]] = [set() for _ in layers]
    for i, g in enumerate(layers):
        for p in g.paths:
            for r in closure.refs(p):
                j = owner.get(r)
                if j is not None and j != i:
                    deps[i].add(j)

    def key(i: int) -> tuple[int, tuple[str, ...]]:
        return (-max(counts[p] for p in layers[i].paths), layers[i].paths)

    placed: list[int] = []
    done: set[int] = set()
    while len(placed) < len(layers):
        ready = [i for i in range(len(layers)) if i not in done and deps[i] <= done]
        pick = min(ready or [i for i in range(len(layers)) if i not in done], key=key)
        placed.append(pick)
        done.add(pick)
    return [layers[i] for i in placed]


def _explicit_groups(closure: Closure, groups: Sequence[Sequence[str]]) -> list[LayerGroup]:
    out: list[LayerGroup] = []
    owner: dict[str, int] = {}
    for i, g in enumerate(groups):
        members = tuple(sorted(set(g)))
        if not members:
            raise LayerforgeError("--layer-group: a group needs at least one store path")
        for p in members:
            if p not in closure.infos:
                raise LayerforgeError(f"--layer-group: {p!r} is not in the image's closure")
            if p in owner:
                raise LayerforgeError(f"--layer-group: {p!r} is listed in two groups")
            owner[p] = i
        out.append(LayerGroup(members, "group"))
    return sorted(out, key=lambda g: g.paths)
