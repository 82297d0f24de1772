"""pytest-benchmark of `layerforge push` (10 layers, ~40 MB) to a local docker-registry;
each round pushes to a new repository, so every blob is uploaded.

Run for numbers: .venv/bin/python -m pytest benchmarks/test_bench_push.py --benchmark-only
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.registry_support import Registry

from layerforge._native import LayerSpec
from layerforge.layers.build import build_layers
from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import open_for_write
from layerforge.model.image_config import ImageConfig
from layerforge.model.platform import Platform


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("bench-registry")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-push") / "layout"
    specs = []
    for i in range(10):
        spec = LayerSpec()
        spec.add_file(f"/l{i}", os.urandom(4 << 20))
        specs.append(spec)
    with open_for_write(root) as lay:
        built = build_layers(lay, specs, compression="zstd", level=1)
        cfg = ImageConfig(Platform("amd64", "linux"), "1970-01-01T00:00:01Z", tuple(b.diff_id for b in built))
        write_image(lay, cfg, [b.descriptor for b in built], annotations={}, ref="b")
    return root


def test_push_fresh_repository(benchmark: Any, registry: Registry, layout: Path, tmp_path: Path) -> None:
    exe = str(Path(sys.executable).parent / "layerforge")
    counter = itertools.count()
    env = {**os.environ, "LAYERFORGE_CACHE_DIR": str(tmp_path / "cache")}

    def once() -> None:
        subprocess.run([exe, "push", f"{layout}:b", f"{registry.host}/bench{next(counter)}/app:1"], check=True,
                       env={**env, "LAYERFORGE_CACHE_DIR": str(tmp_path / f"c{next(counter)}")}, capture_output=True)  # fmt: skip

    benchmark.pedantic(once, rounds=3)


def test_repush_unchanged(benchmark: Any, registry: Registry, layout: Path, tmp_path: Path) -> None:
    """The re-push the native command answers (every tag already names the image)."""
    exe = str(Path(sys.executable).parent / "layerforge")
    env = {**os.environ, "LAYERFORGE_CACHE_DIR": str(tmp_path / "cache")}
    argv = [exe, "push", f"{layout}:b", f"{registry.host}/bench-repush/app:1"]
    subprocess.run(argv, check=True, env=env, capture_output=True)

    def once() -> str:
        return subprocess.run(argv, check=True, env=env, capture_output=True, text=True).stdout

    assert "(unchanged)" in benchmark.pedantic(once, rounds=20)
