"""A layer whose uncompressed bytes are not the config's diff_id is refused by every command
that reads layers whole (the blob matches its own digest, so only the diff_id catches it):
the image's config and its layers disagree about what the image is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, run_cli
from tests.hostile_support import M, sha, tar_bytes, write_layout
from tests.kernel_support import elf_kernel
from tests.nix_support import NIX_CONFIG, build

GOOD = tar_bytes([M("dir", "bin/", mode=0o755), M("file", "bin/true", b"#!/bin/sh\n", mode=0o755)])
OTHER = tar_bytes([M("file", "etc/motd", b"not what the config says\n")])


def _lying_image(root: Path) -> Path:
    """Two layers; the config's second diff_id names another tar than the second blob holds."""
    write_layout(root, [GOOD, OTHER], compress=True, config={
        "rootfs": {"type": "layers", "diff_ids": [sha(GOOD), sha(GOOD + b"\0" * 512)]},
    })  # fmt: skip
    return root


def _commands(tmp_path: Path, image: Path) -> dict[str, list[str | os.PathLike[str]]]:
    kernel = elf_kernel(tmp_path / "kernel")
    return {
        "rootfs-image": ["unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu",
                         "--rootfs-image", f"{image}:latest", "--out", tmp_path / "out"],
        "runtime-bundle": ["nix-image", "--store-path", build("app"), "--from-image", f"{image}:latest",
                           "--format", "runtime-bundle", "--out", tmp_path / "out"],
        "from-image-entrypoint": ["nix-image", "--store-path", build("app"), "--from-image", f"{image}:latest",
                                  "--entrypoint", "/bin/true", "--out", tmp_path / "out"],
        "export-docker": ["export-docker", f"{image}:latest", "--out", tmp_path / "out"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["rootfs-image", "runtime-bundle", "from-image-entrypoint", "export-docker"])
def test_a_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path, command: str) -> None:
    image = _lying_image(tmp_path / "image")
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG, "LAYERFORGE_CACHE_DIR": str(tmp_path / "cache")}
    proc: subprocess.CompletedProcess[str] = run_cli(*_commands(tmp_path, image)[command], check=False, env=env)
    assert proc.returncode in (1, 2), proc.stderr
    assert_one_line_error(proc, "diff_id")
    assert sha(OTHER) in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "scratch left next to the output"
