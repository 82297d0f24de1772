"""Progress reporting from the native core to Python."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from layerforge import _native
from layerforge.cli.progress import ProgressBar
from tests.helpers import image_parts, layerforge_bin, on_a_terminal
from tests.nix_support import IMAGES_NIX


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


def test_progress_bar_draws_onlyon_a_terminal() -> None:
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


def test_a_bar_with_nothing_to_measure_is_not_drawn() -> None:
    """A stage of 0 bytes (nothing to build) drew `100.0% 0.0/0.0 MiB` lines: now nothing."""
    tty = FakeTTY()
    bar = ProgressBar("layers", stream=tty)
    bar(0, 0)
    bar.close()
    assert tty.getvalue() == ""


@pytest.mark.usefixtures("nix_cli_env")
@pytest.mark.parametrize("terminal", [False, True])
def test_nix_image_progress_and_summary_tell_what_happened(tmp_path: Path, terminal: bool) -> None:
    """Without a layer cache every layer is built, and the summary says so (it said `0 built`);
    on a terminal no empty 0/0 bar is drawn."""
    argv = [str(layerforge_bin()), "nix-image", "--nix-file", str(IMAGES_NIX), "-A", "app", "--layering", "per-path",
            "--no-cache", "--out", str(tmp_path / "img"), "--tag", "1.0"]  # fmt: skip
    if terminal:
        code, output = on_a_terminal(argv)
    else:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        code, output = proc.returncode, proc.stderr
    assert code == 0, output
    layers = len(image_parts(tmp_path / "img", "1.0")[1]["layers"])
    assert f"in {layers} layers; layer cache: 0 reused, {layers} built" in output, output
    assert "0.0/0.0 MiB" not in output, output
