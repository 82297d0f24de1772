"""pytest-benchmark benchmarks of the layer hot paths (tar + digests + compression + blob write).

Run for numbers:   .venv/bin/python -m pytest benchmarks --benchmark-only
scripts/test runs them once with --benchmark-disable, as smoke tests.
Timing is reported, never asserted.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from layerforge import _native


def _build(tree: Path, out: Path, compression: str) -> Any:
    shutil.rmtree(out, ignore_errors=True)
    spec = _native.LayerSpec()
    spec.add_tree(tree)
    return _native.build_layers([spec], out / "blobs", out / "tmp", compression=compression)


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_layer(benchmark: Any, tree: Path, tmp_path: Path, compression: str) -> None:
    (result,) = benchmark.pedantic(_build, args=(tree, tmp_path / "out", compression), rounds=3, iterations=1)
    benchmark.extra_info["uncompressed_mb"] = result.uncompressed_size / 1e6
    benchmark.extra_info["blob_mb"] = result.size / 1e6
    assert (tmp_path / "out" / "blobs" / result.digest.split(":")[1]).stat().st_size == result.size


def test_decompress_gzip(benchmark: Any, tree: Path, tmp_path: Path) -> None:
    (built,) = _build(tree, tmp_path / "src", "gzip")
    blob = tmp_path / "src" / "blobs" / built.digest.split(":")[1]
    r = benchmark.pedantic(_native.decompress_blob, args=(blob,), rounds=3, iterations=1)
    assert r.diff_id == built.diff_id
