"""Interrupted builds: the layout keeps its previous contents and never holds a blob whose
name does not match its content, whether the process is killed or asked to stop."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import layerforge_bin, run, run_cli, verify_blobs
from tests.nix_support import NIX_CONFIG


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~256 MiB of incompressible data: several seconds of gzip on one thread."""
    root = tmp_path_factory.mktemp("big")
    for i in range(64):
        (root / f"chunk-{i:02}.bin").write_bytes(os.urandom(4 << 20))
    return root


# A shell without job control starts background jobs with SIGINT ignored, and an ignored
# signal stays ignored across exec; the build under test must see Ctrl-C as a terminal user
# sends it, so it is started through a tiny launcher that restores the default first.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def start_build(tree: Path, layout: Path) -> subprocess.Popen[str]:
    argv = [layerforge_bin(), "dir-image", str(tree), "--out", str(layout), "--tag", "new", "--threads", "1"]
    return subprocess.Popen(
        [sys.executable, "-c", _DEFAULT_SIGINT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_partial_blob(layout: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Block until the build has written at least 8 MiB of its layer blob (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "build finished before it could be interrupted"
        tmp = layout / ".layerforge-tmp"
        if tmp.is_dir() and any(p.stat().st_size > (8 << 20) for p in tmp.glob("blob-*")):
            return
        time.sleep(0.02)
    raise AssertionError("no partial blob appeared in time")


@pytest.fixture
def old_layout(tmp_path: Path) -> Path:
    small = tmp_path / "small"
    small.mkdir()
    (small / "hello").write_text("old image\n")
    layout = tmp_path / "layout"
    run_cli("dir-image", small, "--out", layout, "--tag", "old")
    return layout


def state(layout: Path) -> tuple[bytes, set[str]]:
    return (layout / "index.json").read_bytes(), {p.name for p in (layout / "blobs" / "sha256").iterdir()}


def test_sigkill_mid_layer_leaves_old_layout_valid(big_tree: Path, old_layout: Path, tmp_path: Path) -> None:
    before = state(old_layout)
    proc = start_build(big_tree, old_layout)
    wait_for_partial_blob(old_layout, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert state(old_layout) == before, "no new blob and no index change"
    verify_blobs(old_layout)
    run("skopeo", "inspect", f"oci:{old_layout}:old")
    run("umoci", "unpack", "--image", f"{old_layout}:old", tmp_path / "bundle")
    assert (tmp_path / "bundle" / "rootfs" / "hello").read_text() == "old image\n"
    # The dead build's scratch file is swept by the next build into the layout.
    assert list((old_layout / ".layerforge-tmp").glob("blob-*"))
    small2 = tmp_path / "small2"
    small2.mkdir()
    (small2 / "f").write_text("next\n")
    run_cli("dir-image", small2, "--out", old_layout, "--tag", "next")
    assert not (old_layout / ".layerforge-tmp").exists()
    verify_blobs(old_layout)


@pytest.mark.parametrize(
    ("sig", "status", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_signal_mid_layer_cleans_up(
    big_tree: Path, old_layout: Path, sig: signal.Signals, status: int, word: str
) -> None:
    before = state(old_layout)
    proc = start_build(big_tree, old_layout)
    wait_for_partial_blob(old_layout, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert word in err and "Traceback" not in err
    assert state(old_layout) == before
    assert not (old_layout / ".layerforge-tmp").exists()
    verify_blobs(old_layout)


def test_interrupted_fresh_layout_is_removed(big_tree: Path, tmp_path: Path) -> None:
    layout = tmp_path / "fresh"
    proc = start_build(big_tree, layout)
    wait_for_partial_blob(layout, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert not layout.exists()


@pytest.fixture(scope="module")
def big_store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """~256 MiB in the Nix store, the same bytes every run (so the same store path)."""
    root = tmp_path_factory.mktemp("store-src") / "big-data"
    root.mkdir()
    rng = random.Random(16)
    for i in range(32):
        (root / f"chunk-{i:02}.bin").write_bytes(rng.randbytes(8 << 20))
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    return run("nix-store", "--add", root, env=env).stdout.strip()


def test_sigterm_mid_docker_archive_leaves_nothing(big_store_path: str, tmp_path: Path) -> None:
    """Layers streamed into a docker-archive: a SIGTERM while they are written leaves no
    archive, no partial one and no scratch (the archive appears only by its final rename)."""
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "img.tar"
    argv = [layerforge_bin(), "nix-image", "--store-path", big_store_path, "--out", str(archive), "--no-cache",
            "--format", "docker-archive"]  # fmt: skip
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not list(out.glob(".layerforge-export-*/archive.tar")):
        assert proc.poll() is None, "the archive was written before it could be interrupted"
        assert time.monotonic() < deadline, "no archive was started in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []
