"""`pip install .` from the repository root (after `scripts/build-command`) builds the native
module and installs the native `layerforge` command, which runs the Python part of the CLI,
on the oldest supported CPython (3.9) when the machine has one."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import run

REPO = Path(__file__).resolve().parent.parent


def oldest_python() -> str:
    candidates = [*sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9")), "/usr/bin/python3.9"]
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return sys.executable


def test_pip_install_from_repo_root(tmp_path: Path) -> None:
    python = oldest_python()
    venv = tmp_path / "venv"
    run(python, "-m", "venv", venv)
    run(REPO / "scripts" / "build-command")
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(REPO)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (venv / "bin" / "layerforge").read_bytes()[:4] == b"\x7fELF", "the command is the native binary"
    version = run(venv / "bin" / "layerforge", "--version").stdout
    assert version.startswith("layerforge ")
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    out = run(venv / "bin" / "layerforge", "dir-image", root, "--out", tmp_path / "layout").stdout
    assert out.split()[-1].startswith("sha256:")
    run("skopeo", "inspect", f"oci:{tmp_path / 'layout'}:latest")


def test_every_module_imports_on_the_oldest_python() -> None:
    """Annotations are postponed, but runtime expressions (type aliases, defaults) are not:
    every module must import on 3.9 (the wheel is abi3 for >= 3.9, and Pants runs on 3.9)."""
    script = (
        "import importlib, pkgutil, sys; sys.path.insert(0, sys.argv[1]); import layerforge\n"
        "failures = []\n"
        "for m in pkgutil.walk_packages(layerforge.__path__, 'layerforge.'):\n"
        "    try: importlib.import_module(m.name)\n"
        "    except Exception as e: failures.append(f'{m.name}: {e!r}')\n"
        "print('\\n'.join(failures)); sys.exit(1 if failures else 0)"
    )
    proc = subprocess.run(
        [oldest_python(), "-c", script, str(REPO / "python")], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
