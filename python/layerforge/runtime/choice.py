"""Which container runtime to use: ``docker`` when its daemon answers, else ``podman``, unless
the user names one (``--runtime`` or ``$LAYERFORGE_RUNTIME``: ``docker``, ``podman`` or a path
to either)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.runtime.option_names import option_name
from layerforge.trust.text import shown

KINDS = ("docker", "podman")
ENV = "LAYERFORGE_RUNTIME"
#: How long the docker daemon may take to answer ``docker version`` before podman is used.
DAEMON_TIMEOUT = 10.0


@dataclass(frozen=True)
class Runtime:
    """A runtime command and the global options that go before its subcommand
    (``--root``, ``--storage-driver``, ``--host``, ...)."""

    kind: str
    executable: str
    options: tuple[str, ...] = ()

    def argv(self, *args: str) -> list[str]:
        return [self.executable, *self.options, *args]


def choose_runtime(name: str | None, options: Sequence[str] = ()) -> Runtime:
    """The runtime ``name`` (or ``$LAYERFORGE_RUNTIME``) names, or the one found."""
    name = name or os.environ.get(ENV) or None
    if name is not None and name != "auto":
        return _named(name, tuple(options))
    docker = shutil.which("docker")
    if docker is not None and daemon_answers(Runtime("docker", docker, tuple(options))):
        return Runtime("docker", docker, tuple(options))
    podman = shutil.which("podman")
    if podman is not None:
        return Runtime("podman", podman, tuple(options))
    why = "docker's daemon does not answer" if docker else "docker is not installed"
    raise LayerforgeError(
        f"no container runtime: {why} and podman is not installed "
        f"(install one, or name one with {option_name('--runtime')})"
    )


def daemon_answers(docker: Runtime) -> bool:
    """``docker version`` reaches a server within :data:`DAEMON_TIMEOUT` seconds."""
    try:
        proc = subprocess.run(
            docker.argv("version", "--format", "{{.Server.Version}}"),
            capture_output=True, timeout=DAEMON_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _named(name: str, options: tuple[str, ...]) -> Runtime:
    kind = Path(name).name
    if kind not in KINDS:
        raise UsageError(
            option_name("--runtime"), f"{shown(repr(name))} is neither docker nor podman (nor a path to either)"
        )
    found = shutil.which(name)
    if found is None:
        raise LayerforgeError(f"{option_name('--runtime')}: {shown(repr(name))} is not installed (not found on PATH)")
    return Runtime(kind, found, options)
