"""Nix as root without its build users' group (Debian's nix-bin as root, no `nixbld` group).

Nix's default `build-users-group` is `nixbld`; as root, Nix refuses every build when that group
does not exist ("the group 'nixbld' specified in 'build-users-group' does not exist"). layerforge
then builds as a single-user root install does (`--option build-users-group ''`), with nothing
for the user to set; a group that exists is left to Nix. These tests run with Nix's own default
for the setting: their NIX_CONFIG has no `build-users-group` line (unlike the `nix_cli_env`
fixture's); `sandbox = false` because the fixtures' builder is the host's busybox.
"""

from __future__ import annotations

import grp
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error
from tests.nix_support import IMAGES_NIX, NIX_COMMAND, nix_image

DEFAULT_USERS_CONFIG = "sandbox = false\nsubstituters =\n"


def configured_group(config: str) -> str:
    """The `build-users-group` Nix itself reports for ``config`` (and this machine's nix.conf)."""
    env = {**os.environ, "NIX_CONFIG": config}
    proc = subprocess.run(["nix", *NIX_COMMAND, "show-config"], capture_output=True, text=True, env=env,
                          timeout=60, check=True)  # fmt: skip
    for line in proc.stdout.splitlines():
        name, _, value = line.partition(" = ")
        if name == "build-users-group":
            return value.strip()
    raise AssertionError(proc.stdout)


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def default_users_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NIX_CONFIG", DEFAULT_USERS_CONFIG)
    monkeypatch.setenv("LAYERFORGE_CACHE_DIR", str(tmp_path / "cache"))


def fresh_greeting() -> str:
    """A greeting no earlier run built: Nix must run the builders, not find their outputs."""
    return f"build users {uuid.uuid4().hex}"


def test_nix_image_builds_as_root_without_the_configured_group(default_users_env: None, tmp_path: Path) -> None:
    group = configured_group(DEFAULT_USERS_CONFIG)
    assert os.geteuid() == 0 and group and not group_exists(group), (
        f"this test needs root and Nix's build-users-group ({group!r}) naming no group of this machine"
    )
    out = tmp_path / "img"
    args = ["--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "greeting", fresh_greeting(), "--out", out]
    proc = nix_image(*args, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.json").is_file()


def test_a_group_that_exists_is_left_to_nix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # `root` exists and has no members: Nix's own refusal shows layerforge did not override it.
    assert group_exists("root") and not grp.getgrnam("root").gr_mem
    monkeypatch.setenv("NIX_CONFIG", DEFAULT_USERS_CONFIG + "build-users-group = root\n")
    monkeypatch.setenv("LAYERFORGE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "img"
    args = ["--nix-file", IMAGES_NIX, "-A", "app", "--argstr", "greeting", fresh_greeting(), "--out", out]
    proc = nix_image(*args, check=False)
    assert_one_line_error(proc, "nix-build", "build users group 'root' has no members")
    assert not out.exists()
