"""Unpacking hostile layers never touches anything outside the output: a symlink a lower
layer left is never followed by an opaque whiteout, a whiteout, a hard link's target, a
member or a directory mode applied at the end. Each case runs through every command that
unpacks layers (a runtime bundle on a base image, an initrd from an OCI image, an initrd
from a tar), against a canary directory whose tree, modes, owners and inodes are compared
before and after."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.hostile_support import M, make_canary, shares_inode_with, tar_bytes, tree_state, write_layout
from tests.kernel_support import elf_kernel
from tests.nix_support import NIX_CONFIG, build

TRUE = M("file", "bin/true", b"#!/bin/sh\n", mode=0o755)
BASE = [M("dir", "bin/", mode=0o755), TRUE]


def scenarios(canary: Path) -> dict[str, list[list[M]]]:
    """Layer stacks (lowest first) that would reach ``canary`` through a symlink."""
    c = str(canary)
    link = M("symlink", "x", target=c)
    return {
        "opaque-whiteout-through-symlink": [[*BASE, link], [M("file", "x/.wh..wh..opq")]],
        "opaque-whiteout-with-dir-entry": [[*BASE, link], [M("dir", "x/"), M("file", "x/.wh..wh..opq")]],
        "whiteout-through-symlink": [[*BASE, link], [M("file", "x/.wh.keep.txt"), M("file", "x/sub/.wh.secret")]],
        "whiteout-through-relative-symlink": [
            [*BASE, M("symlink", "r", target="../../../../../../../../../../.." + c)],
            [M("file", "r/.wh.keep.txt")],
        ],
        "dir-modes-after-dir-became-symlink": [
            [*BASE, M("dir", "d/", mode=0o700), M("dir", "d/sub/", mode=0o777, uid=7, gid=7)],
            [M("symlink", "d", target=c)],
        ],
        "dir-modes-same-layer": [
            [*BASE, M("dir", "d/", mode=0o700), M("dir", "d/sub/", mode=0o777, uid=7), M("symlink", "d", target=c)]
        ],
        "hardlink-target-through-symlink": [[*BASE, link], [M("hardlink", "y", target="x/keep.txt")]],
        "hardlink-to-symlink-to-outside-file": [
            [*BASE, M("symlink", "f", target=f"{c}/keep.txt"), M("hardlink", "y", target="f")]
        ],
        "member-through-symlink": [[*BASE, link], [M("file", "x/new", b"evil"), M("dir", "x/sub/newdir/")]],
        "member-replacing-a-file-through-symlink": [[*BASE, link], [M("file", "x/keep.txt", b"overwritten")]],
        "fifo-through-symlink": [[*BASE, link], [M("fifo", "x/pipe")]],
    }


CASES = list(scenarios(Path("/c")))


def check(canary: Path, before: dict[str, object], proc: subprocess.CompletedProcess[str], out: Path) -> None:
    assert tree_state(canary) == before, proc.stderr
    assert not shares_inode_with(out, canary), "a file of the output is a hard link to a file outside it"
    assert "Traceback" not in proc.stderr
    if proc.returncode != 0:
        assert proc.returncode == 1, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return make_canary(tmp_path / "outside" / "canary")


@pytest.mark.parametrize("case", CASES)
def test_initrd_from_an_oci_image_stays_inside(tmp_path: Path, canary: Path, case: str) -> None:
    layers = [tar_bytes(ms) for ms in scenarios(canary)[case]]
    image = write_layout(tmp_path / "image", layers)
    before = tree_state(canary)
    out = tmp_path / "pkg"
    proc = run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), "--arch", "x86_64", "--plat", "qemu",
                   "--rootfs-image", f"{image.root}:latest", "--out", out, check=False)  # fmt: skip
    check(canary, before, proc, out)


@pytest.mark.parametrize("case", [c for c in CASES if len(scenarios(Path("/c"))[c]) == 1])
def test_initrd_from_a_tar_stays_inside(tmp_path: Path, canary: Path, case: str) -> None:
    (members,) = scenarios(canary)[case]
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(tar_bytes(members))
    before = tree_state(canary)
    out = tmp_path / "pkg"
    proc = run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), "--arch", "x86_64", "--plat", "qemu",
                   "--rootfs", tar, "--out", out, check=False)  # fmt: skip
    check(canary, before, proc, out)


@pytest.mark.parametrize("case", CASES)
def test_runtime_bundle_on_a_base_image_stays_inside(tmp_path: Path, canary: Path, case: str) -> None:
    layers = [tar_bytes(ms) for ms in scenarios(canary)[case]]
    base = write_layout(tmp_path / "base", layers, compress=True)
    before = tree_state(canary)
    out = tmp_path / "bundle"
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG, "LAYERFORGE_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_cli("nix-image", "--store-path", build("app"), "--from-image", f"{base.root}:latest",
                   "--format", "runtime-bundle", "--out", out, check=False, env=env)  # fmt: skip
    check(canary, before, proc, out)


def test_a_safe_stack_still_unpacks_as_overlay_would(tmp_path: Path) -> None:
    """Whiteouts, opaque directories, a symlink replaced by a directory and hard links
    inside the tree give the overlay result."""
    layers = [
        [*BASE, M("dir", "etc/"), M("file", "etc/a", b"a"), M("file", "etc/b", b"b"),
         M("symlink", "lib", target="/usr"), M("dir", "opt/", mode=0o700), M("file", "opt/old", b"old")],
        [M("file", "etc/.wh.a"), M("dir", "lib/"), M("file", "lib/libc", b"c"), M("dir", "opt/", mode=0o750),
         M("file", "opt/.wh..wh..opq"), M("file", "opt/new", b"new"), M("hardlink", "opt/new2", target="opt/new")],
    ]  # fmt: skip
    image = write_layout(tmp_path / "image", [tar_bytes(ms) for ms in layers])
    out = tmp_path / "pkg"
    run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "k"), "--arch", "x86_64", "--plat", "qemu",
            "--rootfs-image", image.root, "--out", out)  # fmt: skip
    x = tmp_path / "x"
    run_cli("unikraft-extract", out, "--plat", "qemu", "--arch", "x86_64", "--out", x)
    listing = subprocess.run(["cpio", "-itv"], input=(x / "initrd").read_bytes(), capture_output=True, check=True)
    names = {line.split()[-1] for line in listing.stdout.decode().splitlines()}
    assert {"etc/b", "lib/libc", "opt/new", "opt/new2", "bin/true"} <= names
    assert not names & {"etc/a", "opt/old"}
    modes = {line.split()[-1]: line.split()[0] for line in listing.stdout.decode().splitlines()}
    assert modes["opt"] == "drwxr-x---" and modes["lib"].startswith("d")
