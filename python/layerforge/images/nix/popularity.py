"""How popular a store path is in its closure: how many closure members depend on it.

A path many others reference (glibc, openssl) is likely shared by other images too, so it
deserves its own layer and a place near the bottom of the layer stack. Counting dependants
(reverse reachability) is linear per path and, unlike counting tree expansions, cannot
blow up on diamond-heavy graphs.
"""

from __future__ import annotations

from layerforge.images.nix.closure import Closure


def dependants(closure: Closure) -> dict[str, int]:
    """For each path, the number of *other* closure paths whose closure contains it."""
    reverse: dict[str, list[str]] = {p: [] for p in closure.infos}
    for p in closure.infos:
        for r in closure.refs(p):
            if r in reverse:
                reverse[r].append(p)
    counts: dict[str, int] = {}
    for p in closure.infos:
        seen = {p}
        stack = list(reverse[p])
        while stack:
            q = stack.pop()
            if q not in seen:
                seen.add(q)
                stack.extend(reverse[q])
        counts[p] = len(seen) - 1
    return counts


def stack_order(closure: Closure, paths: list[str] | None = None) -> list[str]:
    """Paths bottom-to-top: most depended-on first, ties by path (deterministic)."""
    counts = dependants(closure)
    return sorted(closure.infos if paths is None else paths, key=lambda p: (-counts[p], p))
