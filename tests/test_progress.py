"""Progress reporting from the native core to Python."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from layerforge import _native
from layerforge.cli.progress import ProgressBar


@pytest.fixture(scope="module")
def random_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rand")
    for i in range(10):
        (root / f"f{i}").write_bytes(os.urandom(4 << 20))
    (root / "small").write_bytes(b"x" * 1234)
    return root


def test_callback_sees_monotonic_progress_to_the_total(random_tree: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    spec = _native.LayerSpec()
    spec.add_tree(random_tree)
    _native.build_layers(
        [spec], tmp_path / "b", tmp_path / "t", compression="gzip", level=9, threads=1,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    content = sum(p.stat().st_size for p in random_tree.iterdir())
    assert len(calls) >= 2, "polled during the build, plus the final call"
    assert calls[-1] == (content, content)
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert all(t == content for _, t in calls)


def test_exception_in_callback_cancels_and_cleans_up(random_tree: Path, tmp_path: Path) -> None:
    def boom(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    spec = _native.LayerSpec()
    spec.add_tree(random_tree)
    with pytest.raises(RuntimeError, match="stop here"):
        _native.build_layers([spec], tmp_path / "b", tmp_path / "t", level=9, threads=1, progress=boom)
    assert not any((tmp_path / "b").iterdir())
    assert not any((tmp_path / "t").iterdir())


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal() -> None:
    tty = FakeTTY()
    bar = ProgressBar("build", stream=tty)
    bar(50 << 20, 100 << 20)
    bar(100 << 20, 100 << 20)
    bar.close()
    out = tty.getvalue()
    assert "build [" in out and " 50.0%" in out and "100.0%" in out and out.endswith("\n")

    pipe = io.StringIO()
    quiet = ProgressBar("build", stream=pipe)
    quiet(1, 2)
    quiet.close()
    assert pipe.getvalue() == ""
