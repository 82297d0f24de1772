"""pytest-benchmark benchmarks of the nix-image hot paths: layer planning over a large
reference graph, and a whole nix-image build of the test closure (real Nix).

Run for numbers: .venv/bin/python -m pytest benchmarks/test_bench_nix.py --benchmark-only
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.nix_support import NIX_CONFIG, build

from layerforge.images.nix.closure import Closure, PathInfo
from layerforge.images.nix.layering import plan_layers


def random_closure(n: int, seed: int = 1) -> Closure:
    rng = random.Random(seed)
    paths = [f"/nix/store/{i:032d}-p{i}-1.0".replace("e", "f") for i in range(n)]
    infos = {
        p: PathInfo(
            p, "sha256-AAAA", rng.randint(1, 50_000_000), tuple(rng.sample(paths[:i], min(i, rng.randint(0, 5))))
        )
        for i, p in enumerate(paths)
    }
    return Closure(roots=(paths[-1],), infos=infos)


def test_plan_layers_2000_paths(benchmark: Any) -> None:
    c = random_closure(2000)
    layers = benchmark.pedantic(plan_layers, args=(c,), kwargs={"strategy": "popularity", "budget": 100}, rounds=3)
    assert len(layers) == 100


def test_nix_image_build_uncached(benchmark: Any, tmp_path: Path) -> None:
    app = build("app")
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    exe = str(Path(sys.executable).parent / "layerforge")

    def once() -> None:
        out = tmp_path / "img"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        subprocess.run([exe, "nix-image", "--store-path", app, "--out", str(out), "--no-cache"], check=True, env=env,
                       capture_output=True)  # fmt: skip

    benchmark.pedantic(once, rounds=3)
    assert (tmp_path / "img" / "index.json").is_file()
