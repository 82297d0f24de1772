"""Layer planning over synthetic reference graphs (no Nix needed): budgets, ordering,
determinism."""

from __future__ import annotations

import random

import pytest

from layerforge.errors import LayerforgeError
from layerforge.images.nix.closure import Closure, PathInfo
from layerforge.images.nix.layering import plan_layers


def sp(name: str) -> str:
    h = "".join("0123456789abcdfghijklmnpqrsvwxyz"[(ord(c) * 7 + i) % 32] for i, c in enumerate((name * 32)[:32]))
    return f"/nix/store/{h}-{name}"


def graph(edges: dict[str, list[str]], sizes: dict[str, int] | None = None, order_seed: int | None = None) -> Closure:
    names = list(edges)
    if order_seed is not None:
        random.Random(order_seed).shuffle(names)
    infos = {
        sp(n): PathInfo(sp(n), "sha256-AAAA", (sizes or {}).get(n, 1000), tuple(sp(r) for r in edges[n])) for n in names
    }
    roots = [sp(n) for n in names if not any(n in deps for deps in edges.values())]
    return Closure(roots=tuple(sorted(roots)), infos=infos)


# app -> {libfoo, libbar}; libfoo -> glibc; libbar -> glibc, zlib; tool -> glibc
EDGES = {
    "app-1": ["libfoo-1", "libbar-2", "tool-3"],
    "libfoo-1": ["glibc-2.38"],
    "libbar-2": ["glibc-2.38", "zlib-1.3"],
    "tool-3": ["glibc-2.38"],
    "glibc-2.38": [],
    "zlib-1.3": [],
}
SIZES = {"glibc-2.38": 30_000_000, "zlib-1.3": 100_000, "libfoo-1": 5_000, "libbar-2": 8_000_000, "tool-3": 2_000}


def names(layers: list[object]) -> list[list[str]]:
    return [[p.split("-", 1)[1] for p in g.paths] for g in layers]  # type: ignore[attr-defined]


def assert_dependencies_below(c: Closure, layers: list[object]) -> None:
    seen: set[str] = set()
    for g in layers:
        seen |= set(g.paths)  # type: ignore[attr-defined]
        assert c.closure_of(g.paths) <= seen, f"{g} needs paths above it"  # type: ignore[attr-defined]
    assert seen == set(c.infos)
    all_paths = [p for g in layers for p in g.paths]  # type: ignore[attr-defined]
    assert len(all_paths) == len(set(all_paths)), "no path appears twice"


def test_fits_budget_one_layer_per_path_dependencies_first() -> None:
    c = graph(EDGES, SIZES)
    layers = plan_layers(c, strategy="popularity", budget=100)
    assert all(len(g.paths) == 1 for g in layers)
    assert names(layers)[0] == ["glibc-2.38"]
    assert names(layers)[-1] == ["app-1"]
    assert_dependencies_below(c, layers)


@pytest.mark.parametrize("budget", [2, 3, 4, 5])
def test_popularity_within_budget_keeps_big_shared_paths(budget: int) -> None:
    c = graph(EDGES, SIZES)
    layers = plan_layers(c, strategy="popularity", budget=budget)
    assert len(layers) == budget
    assert layers[-1].kind == "merged"
    assert names(layers)[0] == ["glibc-2.38"], "most shared and biggest stays alone at the bottom"
    assert_dependencies_below(c, layers)


def test_downward_closed_selection() -> None:
    # libbar is big but needs zlib: it may only have its own layer if zlib is below it.
    c = graph(EDGES, SIZES)
    layers = plan_layers(c, strategy="popularity", budget=4)
    singles = [n[0] for n in names(layers) if len(n) == 1]
    if "libbar-2" in singles:
        assert "zlib-1.3" in singles
    assert_dependencies_below(c, layers)


def test_per_path_refuses_past_budget() -> None:
    c = graph(EDGES, SIZES)
    assert len(plan_layers(c, strategy="per-path", budget=6)) == 6
    with pytest.raises(LayerforgeError, match="per-path needs 6 layers but only 5"):
        plan_layers(c, strategy="per-path", budget=5)


def test_independent_of_input_order() -> None:
    plans = {
        tuple(g.paths for g in plan_layers(graph(EDGES, SIZES, seed), strategy="popularity", budget=3))
        for seed in range(6)
    }
    assert len(plans) == 1


def test_explicit_groups_are_one_layer_and_order_free() -> None:
    c = graph(EDGES, SIZES)
    g1 = [sp("libfoo-1"), sp("tool-3")]
    g2 = [sp("zlib-1.3")]
    a = plan_layers(c, strategy="popularity", budget=10, groups=[g1, g2])
    b = plan_layers(c, strategy="popularity", budget=10, groups=[list(reversed(g2)), list(reversed(g1))])
    assert a == b
    assert ("group", tuple(sorted(g1))) in [(g.kind, g.paths) for g in a]
    assert_dependencies_below(c, a)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([[sp("nope-1")]], "not in the image's closure"),
        ([[sp("zlib-1.3")], [sp("zlib-1.3")]], "listed in two groups"),
    ],
)
def test_bad_groups(groups: list[list[str]], message: str) -> None:
    with pytest.raises(LayerforgeError, match=message):
        plan_layers(graph(EDGES, SIZES), strategy="popularity", budget=10, groups=groups)


def test_large_random_graph_properties() -> None:
    rng = random.Random(7)
    n = 400
    edges = {f"p{i}-1": [f"p{j}-1" for j in rng.sample(range(i), min(i, rng.randint(0, 4)))] for i in range(n)}
    sizes = {f"p{i}-1": rng.randint(1, 10_000_000) for i in range(n)}
    c = graph(edges, sizes)
    layers = plan_layers(c, strategy="popularity", budget=100)
    assert len(layers) == 100
    assert_dependencies_below(c, layers)
