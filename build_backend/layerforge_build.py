"""layerforge's PEP 517 build backend (pyproject.toml: `backend-path = ["build_backend"]`): maturin's,
after building the native `layerforge` command (rust/layerforge-cli, release, `--locked`) into the
wheel's scripts directory, python/layerforge.data/scripts/ (`data` in [tool.maturin]), so that
`pip install .`, `pip wheel .` and `python -m build` work from a clean checkout or the sdist with no
manual step. scripts/build-command does the same for `maturin develop` and `maturin build`.

Every hook is maturin's. maturin insists that the data directory exists even when it puts nothing of
it in what it writes (metadata, the sdist): those hooks get an empty one for their run only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import maturin  # type: ignore[import-untyped]

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "python" / "layerforge.data" / "scripts"
CLI_PACKAGE = "layerforge-cli"
COMMAND = "layerforge"

# What a build needs installed: maturin's answers.
get_requires_for_build_wheel = maturin.get_requires_for_build_wheel
get_requires_for_build_editable = maturin.get_requires_for_build_editable
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist


class BuildError(SystemExit):
    """A one-line failure of the backend's own step (the build frontend prints it)."""


def build_command() -> Path:
    """Builds rust/layerforge-cli with cargo (CARGO_TARGET_DIR and the rest of cargo's environment
    apply) and installs its binary as SCRIPTS/layerforge (written aside, then renamed)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        raise BuildError(
            "layerforge build backend: cargo is not on PATH; install Rust (https://rustup.rs) to build layerforge"
        )
    argv = [cargo, "build", "--release", "--locked", "-p", CLI_PACKAGE, "--message-format=json-render-diagnostics"]
    # Diagnostics and progress go to stderr as usual; stdout is cargo's JSON, which names the binary
    # wherever the target directory is.
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(
            f"layerforge build backend: `cargo build -p {CLI_PACKAGE}` failed (exit {proc.returncode}); "
            "cargo's messages are above"
        )
    executable = None
    for line in proc.stdout.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        target = message.get("target") or {}
        if (
            message.get("reason") == "compiler-artifact"
            and target.get("name") == COMMAND
            and "bin" in target.get("kind", [])
        ):
            executable = message.get("executable")
    if not executable:
        raise BuildError(f"layerforge build backend: cargo built no `{COMMAND}` binary for package {CLI_PACKAGE}")
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    tmp = SCRIPTS / f"{COMMAND}.tmp"
    shutil.copyfile(executable, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, SCRIPTS / COMMAND)
    return SCRIPTS / COMMAND


@contextmanager
def data_dir_present() -> Iterator[None]:
    """SCRIPTS exists for the block; what it had to create is removed afterwards."""
    created = [p for p in (SCRIPTS.parent, SCRIPTS) if not p.exists()]
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        for p in reversed(created):
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()


def build_wheel(
    wheel_directory: str, config_settings: Mapping[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    build_command()
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str, config_settings: Mapping[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    build_command()
    return str(maturin.build_editable(wheel_directory, config_settings, metadata_directory))


def build_sdist(sdist_directory: str, config_settings: Mapping[str, Any] | None = None) -> str:
    with data_dir_present():
        return str(maturin.build_sdist(sdist_directory, config_settings))


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Mapping[str, Any] | None = None) -> str:
    with data_dir_present():
        return str(maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Mapping[str, Any] | None = None
) -> str:
    with data_dir_present():
        return str(maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings))
