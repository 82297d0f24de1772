"""Building the fixture closures with real Nix (nix-bin), once per test session."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from layerforge.images.nix.layer_job_document import JobLayer, LayerJobDocument
from layerforge.images.nix.layer_jobs import STORE_PATHS, LayerJob
from tests.helpers import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "nix"
IMAGES_NIX = FIXTURES / "images.nix"
CHANNEL_NIX = FIXTURES / "channel.nix"
FLAKE = FIXTURES / "flake"
# As root on a machine without the nixbld users, and without a sandbox (Debian's nix-bin); no
# substituters (cache.nixos.org is unreachable here, and every query of it retries for seconds).
NIX_CONFIG = "sandbox = false\nbuild-users-group =\nsubstituters =\n"
NIX_COMMAND = ("--extra-experimental-features", "nix-command")


def nix_image(*args: object, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``layerforge nix-image ARGS`` in this process's environment (see the ``nix_cli_env`` fixture)."""
    return run_cli("nix-image", *map(str, args), check=check, env=os.environ.copy(), cwd=cwd)


def nix_env(config: str = NIX_CONFIG) -> dict[str, str]:
    return {**os.environ, "NIX_CONFIG": config}


def substituter_config(cache: Path) -> str:
    """NIX_CONFIG with one substituter, the unsigned ``file://`` binary cache ``cache``."""
    return NIX_CONFIG.replace("substituters =\n", f"substituters = file://{cache}\nrequire-sigs = false\n")


def copy_to_cache(cache: Path, *paths: str) -> None:
    """``nix copy --to file://CACHE`` (the paths and their closure)."""
    argv = ["nix", *NIX_COMMAND, "copy", "--to", f"file://{cache}", *paths]
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr


def delete_from_store(*paths: str) -> None:
    """``nix-store --delete``: the paths are gone from the local store (nothing may refer to them)."""
    proc = subprocess.run(["nix-store", "--delete", *paths], capture_output=True, text=True, env=nix_env(),
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not any(Path(p).exists() for p in paths), paths


@cache
def layer_job(*layers: tuple[object, LayerJob]) -> str:
    """The ``nix-layer --job`` document building each job into its directory."""
    return LayerJobDocument(tuple(JobLayer(str(out), job) for out, job in layers)).dumps()


def store_layer(*paths: str, machine: str | None = None) -> LayerJob:
    """A store-path layer of ``paths`` (mtime 1, gzip), executables checked for ``machine``."""
    return LayerJob(STORE_PATHS, 1, store_paths=paths, machine=machine)


def build(attr: str, **argstrs: str) -> str:
    argv = ["nix-build", str(IMAGES_NIX), "-A", attr, "--no-out-link"]
    for k, v in sorted(argstrs.items()):
        argv += ["--argstr", k, v]
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_env(), timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def closure(path: str) -> set[str]:
    proc = subprocess.run(["nix-store", "-qR", path], capture_output=True, text=True, check=True, env=nix_env())
    return set(proc.stdout.split())
