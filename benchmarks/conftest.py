"""Fixtures shared by the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~64 MiB, half compressible text, half random, over 200 files."""
    root = tmp_path_factory.mktemp("bench-tree")
    rnd = os.urandom(1 << 20)
    for i in range(100):
        d = root / f"dir{i % 10}"
        d.mkdir(exist_ok=True)
        (d / f"text{i}.txt").write_bytes((f"line {i} of a benchmark layer\n".encode()) * 11_000)
        (d / f"bin{i}.dat").write_bytes(rnd[i * 1000 :] + rnd[: i * 1000])
    return root
