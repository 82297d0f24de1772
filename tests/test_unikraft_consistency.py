"""unikraft_image details a kraftkit user meets: the platform and version the kconfig was
built with, kraftkit's runtime directory for its local store, and a layout that keeps no
blobs of platforms it no longer packages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import assert_one_line_error, index_entry, read_json_blob, run_cli, verify_blobs
from tests.kernel_support import elf_kernel

VERSION = "0.18.0~5f0f6e1"
KVM_QEMU = f'CONFIG_UK_FULLVERSION="{VERSION}"\nCONFIG_PLAT_KVM=y\nCONFIG_KVM_VMM_QEMU=y\n'
KVM_FC = f'CONFIG_UK_FULLVERSION="{VERSION}"\nCONFIG_PLAT_KVM=y\nCONFIG_KVM_VMM_FIRECRACKER=y\n'
KVM_ONLY = "CONFIG_PLAT_KVM=y\n"
XEN = "CONFIG_PLAT_XEN=y\n# CONFIG_PLAT_KVM is not set\n"
NO_PLATFORM = f'CONFIG_UK_FULLVERSION="{VERSION}"\nCONFIG_LIBUKDEBUG=y\n'


@pytest.fixture(autouse=True)
def _epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def kconfig(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.config"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("config", "plat", "built_for"),
    [
        (XEN, "qemu", "built for xen"),
        (KVM_QEMU, "fc", "built for qemu"),
        (KVM_QEMU, "firecracker", "built for qemu"),
        (KVM_FC, "qemu", "built for fc, kraftcloud"),
        (KVM_FC, "xen", "built for fc, kraftcloud"),
        (XEN, "linuxu", "CONFIG_PLAT_XEN=y"),
    ],
)
def test_a_platform_the_kconfig_contradicts_is_refused(tmp_path: Path, config: str, plat: str, built_for: str) -> None:
    kernel = elf_kernel(tmp_path / "app")
    out = tmp_path / "out"
    proc = run_cli("unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", plat,
                   "--kconfig", kconfig(tmp_path, "k", config), "--out", out, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--plat", "contradicts the kconfig", built_for)
    assert not out.exists()
    # The same through --target names --target.
    spec = f"{plat}/x86_64={kernel},kconfig={tmp_path / 'k.config'}"
    proc = run_cli("unikraft-image", "--target", spec, "--out", out, check=False)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--target", "contradicts the kconfig", built_for)
    assert not out.exists()


@pytest.mark.parametrize(
    ("config", "plat"),
    [(KVM_QEMU, "qemu"), (KVM_FC, "fc"), (KVM_FC, "kraftcloud"), (KVM_ONLY, "fc"), (KVM_ONLY, "qemu"),
     (XEN, "xen"), (NO_PLATFORM, "xen")],
)  # fmt: skip
def test_a_platform_the_kconfig_allows_is_packaged(tmp_path: Path, config: str, plat: str) -> None:
    out = tmp_path / "out"
    run_cli("unikraft-image", "--kernel", elf_kernel(tmp_path / "app"), "--arch", "x86_64", "--plat", plat,
            "--kconfig", kconfig(tmp_path, "k", config), "--out", out)  # fmt: skip
    (entry,) = read_json_blob(out, index_entry(out, "latest")["digest"])["manifests"]
    assert entry["platform"]["os"] == {"firecracker": "fc"}.get(plat, plat)


def test_a_version_the_kconfig_contradicts_is_refused(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "app")
    config = kconfig(tmp_path, "k", KVM_QEMU)
    out = tmp_path / "out"
    base = ["unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu", "--out", out]
    proc = run_cli(*base, "--kconfig", config, "--version", "0.17.0", check=False)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--version", "'0.17.0'", f"CONFIG_UK_FULLVERSION='{VERSION}'", "qemu/x86_64")
    assert not out.exists()
    # The kconfig's own version, or a version for a kconfig that states none, is fine.
    run_cli(*base, "--kconfig", config, "--version", VERSION)
    (entry,) = read_json_blob(out, index_entry(out, "latest")["digest"])["manifests"]
    assert entry["platform"]["os.version"] == VERSION
    run_cli(*base, "--kconfig", kconfig(tmp_path, "bare", KVM_ONLY), "--version", "0.17.0")
    (entry,) = read_json_blob(out, index_entry(out, "latest")["digest"])["manifests"]
    assert entry["platform"]["os.version"] == "0.17.0"


def test_kraftkit_runtime_dir_places_the_default_store(tmp_path: Path) -> None:
    kernel = elf_kernel(tmp_path / "hello_qemu-x86_64")
    args = ["unikraft-image", "--kernel", kernel, "--arch", "x86_64", "--plat", "qemu",
            "--name", "unikraft.org/hello:0.1", "--out", tmp_path / "out", "--kraftkit-store"]  # fmt: skip
    xdg = tmp_path / "xdg"
    runtime = tmp_path / "runtime"
    env = {**os.environ, "XDG_DATA_HOME": str(xdg), "KRAFTKIT_RUNTIME_DIR": str(runtime)}
    run_cli(*args, env=env)
    assert (runtime / "oci" / "indexes" / "unikraft.org" / "hello" / "0.1").is_symlink()
    assert not xdg.exists()
    # Without it (or empty), kraftkit's default below XDG_DATA_HOME.
    run_cli(*args, env={**env, "KRAFTKIT_RUNTIME_DIR": ""})
    assert (xdg / "kraftkit" / "runtime" / "oci" / "indexes" / "unikraft.org" / "hello" / "0.1").is_symlink()
    help_text = run_cli("unikraft-image", "--help", env=env).stdout
    assert str(runtime / "oci") in help_text.replace("\n", "").replace(" ", "")


def reachable(layout: Path) -> set[str]:
    """Digests every index.json entry reaches, walked from the JSON documents."""
    seen: set[str] = set()

    def visit(desc: dict[str, Any]) -> None:
        seen.add(desc["digest"])
        doc = read_json_blob(layout, desc["digest"])
        if "manifests" in doc:
            for child in doc["manifests"]:
                visit(child)
        else:
            seen.update(d["digest"] for d in [doc["config"], *doc["layers"]])

    for entry in json.loads((layout / "index.json").read_bytes())["manifests"]:
        visit(entry)
    return seen


def stored(layout: Path) -> set[str]:
    return {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}


def test_blobs_of_replaced_platforms_leave_the_layout(tmp_path: Path) -> None:
    qemu = elf_kernel(tmp_path / "app_qemu-x86_64", payload=b"qemu build\n")
    fc = elf_kernel(tmp_path / "app_fc-x86_64", payload=b"firecracker build\n")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "motd").write_text("hello\n")
    out = tmp_path / "out"
    name = ["--name", "unikraft.org/app:1.0"]
    run_cli("unikraft-image", "--target", f"qemu/x86_64={qemu},rootfs={rootfs}", "--target", f"fc/x86_64={fc}",
            *name, "--out", out)  # fmt: skip
    first = stored(out)
    assert first == reachable(out)
    old_fc_kernel = {d for d in first if read_blob_bytes(out, d).find(b"firecracker build") >= 0}
    assert len(old_fc_kernel) == 1

    # Re-packaging fc: its old manifest, config and kernel layer go, as does the old index;
    # the qemu platform's blobs (still listed) stay.
    fc.write_bytes(fc.read_bytes() + b"rebuilt\n")
    run_cli("unikraft-image", "--kernel", fc, "--arch", "x86_64", "--plat", "fc", *name, "--out", out)
    second = stored(out)
    assert second == reachable(out)
    assert not old_fc_kernel & second
    assert len(first - second) == 4, "old index, fc manifest, config, kernel layer"
    verify_blobs(out)
    run_cli("unikraft-extract", f"{out}:latest", "--plat", "qemu", "--arch", "x86_64", "--out", tmp_path / "x")

    # A blob another reference still reaches is kept: tag the package a second time, then
    # --replace drops qemu from :latest only.
    run_cli("unikraft-image", "--kernel", fc, "--arch", "x86_64", "--plat", "fc", *name, "--out", out, "--tag", "keep",
            "--include", f"{out}:latest")  # fmt: skip
    run_cli("unikraft-image", "--kernel", fc, "--arch", "x86_64", "--plat", "fc", *name, "--out", out, "--replace")
    third = stored(out)
    assert third == reachable(out)
    assert second <= third, "the qemu blobs are still reached through :keep"
    # Dropping :keep's platforms too: now the qemu blobs go.
    run_cli("unikraft-image", "--kernel", fc, "--arch", "x86_64", "--plat", "fc", *name, "--out", out, "--tag", "keep",
            "--replace")  # fmt: skip
    fourth = stored(out)
    assert fourth == reachable(out)
    assert not any(b"qemu build" in read_blob_bytes(out, d) for d in fourth)
    verify_blobs(out)


def read_blob_bytes(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
