"""pytest-benchmark of the Nydus conversion hot path: layer tars in, Nydus blobs (chunking,
blake3, zstd, dedup, blob meta) and the merged RAFS v6 bootstrap out.

Run for numbers:   .venv/bin/python -m pytest benchmarks/test_bench_nydus.py --benchmark-only
scripts/test runs it once with --benchmark-disable, as a smoke test. Timing is never asserted.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from layerforge import _native


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four gzip layers, ~64 MiB of files: text, random bytes, and files repeated across layers."""
    root = tmp_path_factory.mktemp("bench-nydus")
    rng = random.Random(7)
    shared = rng.randbytes(4 << 20)
    out = []
    for n in range(4):
        spec = _native.LayerSpec()
        for i in range(40):
            spec.add_file(f"layer{n}/text{i}.txt", f"line {i} of layer {n}\n".encode() * 12_000)
            spec.add_file(f"layer{n}/bin{i}.dat", rng.randbytes(100_000))
        spec.add_file(f"layer{n}/shared.bin", shared)
        (r,) = _native.build_layers([spec], root / "blobs", root / "tmp", compression="gzip", level=1)
        out.append(root / "blobs" / r.digest.split(":")[1])
    return out


def _convert(layers: list[Path], out: Path) -> Any:
    shutil.rmtree(out, ignore_errors=True)
    return _native.convert_nydus(
        [(p, None, None, None, f"layer {i}") for i, p in enumerate(layers)], out / "blobs", out / "tmp"
    )


def test_convert_nydus(benchmark: Any, layers: list[Path], tmp_path: Path) -> None:
    result = benchmark.pedantic(_convert, args=(layers, tmp_path / "out"), rounds=3, iterations=1)
    benchmark.extra_info["file_mb"] = sum(layer.file_bytes for layer in result.layers) / 1e6
    benchmark.extra_info["blob_mb"] = sum(b.size or 0 for b in result.blobs) / 1e6
    # The shared file is stored once; the upper layers reference the first layer's chunks.
    assert [layer.lower_bytes for layer in result.layers] == [0, 4 << 20, 4 << 20, 4 << 20]
    assert len(result.blobs) == 4
