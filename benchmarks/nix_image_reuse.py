#!/usr/bin/env python3
"""nix-image speed and layer reuse, in one run.

1. Full build of a >= 300 MB, >= 40-path closure (empty layer cache) versus the rebuild after
   the application (a leaf of the graph) changed (warm cache). Target: rebuild < 15% of full.
2. Cross-image reuse for a family of three images sharing most libraries: the fraction of
   layer bytes each image shares with another, from the real blobs layerforge wrote, at
   --max-layers 100 and at a tight budget. The same closures are also laid out the way
   dockerTools' streamLayeredImage does (popularity by tree expansion, the first N-1 paths
   alone, the rest merged) as the baseline; nix2container reports ~53% with one layer per path.

Closures come from benchmarks/nix/family.nix (slices of the host's /usr/lib), built by real Nix.
Usage: .venv/bin/python benchmarks/nix_image_reuse.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from layerforge.images.nix.closure import Closure, Nix
from layerforge.images.nix.layering import plan_layers

FAMILY = Path(__file__).parent / "nix" / "family.nix"
ENV = {**os.environ, "NIX_CONFIG": "sandbox = false\nbuild-users-group =\n"}
LAYERFORGE = str(Path(sys.executable).parent / "layerforge")


def nix_build(attr: str, payload: str) -> str:
    out = subprocess.run(
        ["nix-build", str(FAMILY), "-A", attr, "--argstr", "payload", payload, "--no-out-link"],
        capture_output=True, text=True, env=ENV, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def build_image(store_path: str, out: Path, cache: Path, max_layers: int = 100) -> float:
    t = time.perf_counter()
    subprocess.run(
        [LAYERFORGE, "nix-image", "--store-path", store_path, "--out", str(out), "--cache-dir", str(cache),
         "--max-layers", str(max_layers)],
        capture_output=True, text=True, env=ENV, check=True,
    )  # fmt: skip
    return time.perf_counter() - t


def layers_of(layout: Path) -> list[tuple[str, int]]:
    index = json.loads((layout / "index.json").read_bytes())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    return [(layer["digest"], layer["size"]) for layer in manifest["layers"]]


def shared_fraction(images: list[list[tuple[str, int]]]) -> tuple[float, float]:
    """(bytes of each image's layers also found in another image / all layer bytes,
    registry bytes for the family / bytes of the images stored separately)."""
    owners = Counter(d for layers in images for d in {d for d, _ in layers})
    total = sum(size for layers in images for _, size in layers)
    shared = sum(size for layers in images for d, size in layers if owners[d] > 1)
    unique = sum(dict(x for layers in images for x in layers).values())
    return shared / total, unique / total


def docker_tools_plan(closure: Closure, max_layers: int) -> list[frozenset[str]]:
    """streamLayeredImage's popularity contest: counts of each path in the expansion of the
    graph into a tree from the roots; most popular first, ties by name; N-1 alone, rest merged."""
    count: dict[str, int] = {}

    def visit(p: str, weight: int) -> None:
        count[p] = count.get(p, 0) + weight
        for r in closure.refs(p):
            visit(r, weight)

    for root in closure.roots:
        visit(root, 1)
    ranked = sorted(closure.infos, key=lambda p: (-count[p], p))
    singles = [frozenset([p]) for p in ranked[: max_layers - 1]]
    rest = frozenset(ranked[max_layers - 1 :])
    return singles + ([rest] if rest else [])


def planned_fraction(closures: list[Closure], plans: list[list[frozenset[str]]]) -> float:
    images = [[(",".join(sorted(g)), c.total_nar_size(g)) for g in plan] for c, plan in zip(closures, plans)]
    return shared_fraction(images)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tight", type=int, default=12, help="a tight --max-layers for the sharing comparison")
    args = ap.parse_args()

    apps = [nix_build(f"app{k}", "1") for k in range(3)]
    changed = nix_build("app0", "2")
    nix = Nix(echo_build_log=False)
    closures = [nix.closure([a]) for a in apps]
    c0 = closures[0]
    print(f"closure of {Path(apps[0]).name}: {len(c0.infos)} store paths, {c0.total_nar_size() / 1e6:.0f} MB (narSize)")

    with tempfile.TemporaryDirectory(prefix="lf-nix-bench-") as tmp:
        work = Path(tmp)
        full_times, rebuild_times = [], []
        for i in range(args.runs):
            cache = work / f"cache{i}"
            full_times.append(build_image(apps[0], work / f"full{i}", cache))
            rebuild_times.append(build_image(changed, work / f"re{i}", cache))
        full, rebuild = min(full_times), min(rebuild_times)
        print(f"\nfull build (empty cache)       {full:6.2f} s")
        print(f"rebuild after the app changed  {rebuild:6.2f} s  = {100 * rebuild / full:.1f}% of full (target < 15%)")

        print(f"\n{'max layers':>10} {'layerforge shared':>18} {'family storage':>15} {'dockerTools-style':>18}")
        for max_layers in (100, args.tight):
            cache = work / f"fam-cache-{max_layers}"
            images = []
            for k, app in enumerate(apps):
                out = work / f"fam{max_layers}-{k}"
                build_image(app, out, cache, max_layers)
                images.append(layers_of(out))
            ours, storage = shared_fraction(images)
            ours_planned = planned_fraction(
                closures,
                [
                    [frozenset(g.paths) for g in plan_layers(c, strategy="popularity", budget=max_layers)]
                    for c in closures
                ],
            )
            baseline = planned_fraction(closures, [docker_tools_plan(c, max_layers) for c in closures])
            assert abs(ours_planned - ours) < 0.02, (ours_planned, ours)
            print(f"{max_layers:>10} {100 * ours:17.1f}% {100 * storage:14.1f}% {100 * baseline:17.1f}%")
        print("\nshared = bytes of each image's layers that another image of the family also has;")
        print("family storage = registry bytes for the three images / bytes if stored separately.")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
