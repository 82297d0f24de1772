"""pytest-benchmark benchmarks of the initrd hot path: a reproducible newc cpio of a tree,
plain and gzip'd (the same generated ~64 MiB tree as the layer benchmarks).

Run for numbers:   .venv/bin/python -m pytest benchmarks/test_bench_cpio.py --benchmark-only
Timing is reported, never asserted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from layerforge import _native


def _cpio(tree: Path, out: Path, compression: str) -> Any:
    shutil.rmtree(out, ignore_errors=True)
    spec = _native.LayerSpec()
    spec.add_tree(tree)
    return _native.build_layers([spec], out / "blobs", out / "tmp", format="cpio", compression=compression)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_cpio(benchmark: Any, tree: Path, tmp_path: Path, compression: str) -> None:
    (result,) = benchmark.pedantic(_cpio, args=(tree, tmp_path / "out", compression), rounds=3, iterations=1)
    benchmark.extra_info["cpio_mb"] = result.uncompressed_size / 1e6
    archive = tmp_path / "out" / "blobs" / result.digest.split(":")[1]
    listing = subprocess.run(
        f"{'gzip -dc' if compression == 'gzip' else 'cat'} '{archive}' | cpio -t --quiet",
        shell=True, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert len(listing.stdout.split()) == sum(1 for _ in tree.rglob("*"))
