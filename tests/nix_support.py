"""Building the fixture closures with real Nix (nix-bin), once per test session."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "nix"
IMAGES_NIX = FIXTURES / "images.nix"
# As root on a machine without the nixbld users, and without a sandbox (Debian's nix-bin).
NIX_CONFIG = "sandbox = false\nbuild-users-group =\n"


def nix_env() -> dict[str, str]:
    return {**os.environ, "NIX_CONFIG": NIX_CONFIG}


@cache
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
