"""The release artifacts of HEAD: ``scripts/dist OUTDIR`` run on a clean clone of the
working copy's HEAD, once per commit for the whole suite (the modules that read them run in
different test processes). The output is kept under the test cache by commit, written to a
temporary directory and renamed when complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import TEST_CACHE, machine_lock, run

REPO = Path(__file__).resolve().parent.parent
#: cargo's target directory for scripts/dist's builds of a clean clone, kept between runs (the
#: command is built for x86_64-unknown-linux-gnu.2.17, so not shared with other builds).
DIST_TARGET = TEST_CACHE / "dist-target"
#: scripts/dist's outputs by commit.
DIST_OUT = TEST_CACHE / "dist-out"


def clean_clone(parent: Path) -> Path:
    """The working copy's HEAD, cloned: untracked files (a built python/layerforge.data, a
    stale _native.abi3.so) cannot help the build."""
    src = parent / "src"
    run("git", "clone", "-q", "--no-local", REPO, src)
    return src


def dist_output() -> Path:
    """scripts/dist's OUTDIR for HEAD (the tool's wheel and sdist, the plugin's wheel), plus
    ``tools``: the path of the venv of pinned tools it used."""
    commit = run("git", "rev-parse", "HEAD", cwd=REPO).stdout.strip()
    out = DIST_OUT / commit
    with machine_lock("dist-target"):
        if (out / "tools").is_file():
            return out
        DIST_OUT.mkdir(parents=True, exist_ok=True)
        for stale in DIST_OUT.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=DIST_OUT, prefix=".build-") as tmp:
            src = clean_clone(Path(tmp))
            built = Path(tmp) / "out"
            env = {**os.environ, "CARGO_TARGET_DIR": str(DIST_TARGET)}
            proc = subprocess.run(
                [src / "scripts" / "dist", built], cwd=src, env=env, capture_output=True, text=True, timeout=3600,
                check=False,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            [venv_line] = [line for line in proc.stdout.splitlines() if line.startswith("scripts/dist: tools in ")]
            (built / "tools").write_text(venv_line.removeprefix("scripts/dist: tools in "))
            built.rename(out)
    return out
