"""Nix images for other platforms: closures are checked against the image's architecture
(the ELF headers of their executables, read while the layers are), with an opt-out."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.foreign_support import EM_AARCH64, EM_X86_64, arm64_busybox, elf_machine
from tests.helpers import assert_one_line_error, blob_path, image_parts, run_cli, snapshot
from tests.nix_support import build, layer_job, nix_image, store_layer

pytestmark = pytest.mark.usefixtures("nix_cli_env")

OPT_OUT = "--allow-foreign-executables"


def busybox_in_layers(layout: Path, tmp: Path) -> Path:
    """The image's ``/nix/store/*/bin/busybox``, extracted from its layers to ``tmp``."""
    _, manifest, _ = image_parts(layout)
    for layer in manifest["layers"]:
        with tarfile.open(blob_path(layout, layer["digest"])) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.endswith("/bin/busybox"):
                    tar.extract(m, tmp, filter="data")
                    return tmp / m.name
    raise AssertionError("no busybox in the image")


def test_amd64_closure_declared_arm64_is_refused_and_the_opt_out_packages_it(tmp_path: Path) -> None:
    busybox = build("busyboxPkg")
    # An amd64 image first: its layer goes into the layer cache, which must not let the same
    # store path into an arm64 image unchecked.
    nix_image("--store-path", busybox, "--out", tmp_path / "amd64", "--arch", "amd64")
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("untouched\n")
    before = snapshot(tmp_path)
    out = tmp_path / "arm64"
    proc = nix_image("--store-path", busybox, "--out", out, "--arch", "arm64", check=False)
    assert_one_line_error(proc, f"'{busybox}/bin/busybox' is an ELF executable for amd64", "architecture is arm64",
                          OPT_OUT)  # fmt: skip
    assert proc.returncode == 1
    assert snapshot(tmp_path) == before, "a refused image wrote something"

    nix_image("--store-path", busybox, "--out", out, "--arch", "arm64", OPT_OUT)
    _, _, config = image_parts(out)
    assert (config["architecture"], config["os"], config.get("variant")) == ("arm64", "linux", "v8")
    assert elf_machine(busybox_in_layers(out, tmp_path / "x")) == EM_X86_64


def test_arm64_closure_packages_as_arm64_only(tmp_path: Path) -> None:
    arm = arm64_busybox()
    out = tmp_path / "arm64"
    nix_image("--store-path", arm.store_path, "--out", out, "--arch", "arm64")
    _, _, config = image_parts(out)
    assert config["architecture"] == "arm64"
    assert elf_machine(busybox_in_layers(out, tmp_path / "x")) == EM_AARCH64
    proc = nix_image("--store-path", arm.store_path, "--out", tmp_path / "amd64", "--arch", "amd64", check=False)
    assert_one_line_error(proc, f"'{arm.store_path}/bin/busybox' is an ELF executable for arm64",
                          "architecture is amd64")  # fmt: skip
    assert not (tmp_path / "amd64").exists()


def test_nix_layer_checks_only_when_asked(tmp_path: Path) -> None:
    """The Pants layer step: ``--check-arch`` refuses, and without it the layer is built."""
    arm = arm64_busybox()

    def job(out: str, machine: str | None) -> str:
        return layer_job((tmp_path / out, store_layer(arm.store_path, machine=machine)))

    proc = run_cli("nix-layer", "--job", job("l1", "amd64"), check=False)
    assert_one_line_error(proc, "nix-layer: error:", f"'{arm.store_path}/bin/busybox'", "for arm64", OPT_OUT)
    assert not (tmp_path / "l1").exists()
    run_cli("nix-layer", "--job", job("l2", "arm64"))
    run_cli("nix-layer", "--job", job("l3", None))
    assert (tmp_path / "l2" / "layer.json").read_bytes() == (tmp_path / "l3" / "layer.json").read_bytes()


#: The host's static busybox as an x86_64-linux derivation (what the tests' machine builds).
HOST_BUSYBOX = (
    'derivation { name = "busybox-host"; system = "x86_64-linux"; builder = "/bin/busybox"; args = [ "sh" "-c" '
    '"/bin/busybox mkdir -p $out/bin && /bin/busybox cp /bin/busybox $out/bin/ && '
    'for t in sh echo cat ls uname; do /bin/busybox ln -s busybox $out/bin/$t; done" ]; }'
)


def system_nix(tmp: Path) -> Path:
    """A Nix file whose busybox is arm64 for ``aarch64-linux``, read both from its ``system``
    argument and from ``builtins.currentSystem``, and the host's otherwise."""
    f = tmp / "systems.nix"
    f.write_text(
        "{ system ? builtins.currentSystem }:\n"
        "let\n"
        f"  arm = {arm64_busybox().fixed_output_nix()};\n"
        f"  host = {HOST_BUSYBOX};\n"
        "in {\n"
        '  busybox = if system == "aarch64-linux" then arm else host;\n'
        '  current = if builtins.currentSystem == "aarch64-linux" then arm else host;\n'
        "}\n"
    )
    return f


@pytest.mark.parametrize("attr", ["busybox", "current"])
def test_system_evaluates_the_nix_file_for_it(tmp_path: Path, attr: str) -> None:
    nix_file = system_nix(tmp_path)
    out = tmp_path / "arm64"
    nix_image("--nix-file", nix_file, "-A", attr, "--system", "aarch64-linux", "--out", out)
    _, _, config = image_parts(out)
    assert (config["os"], config["architecture"], config.get("variant")) == ("linux", "arm64", "v8")
    assert elf_machine(busybox_in_layers(out, tmp_path / "x")) == EM_AARCH64
    nix_image("--nix-file", nix_file, "-A", attr, "--out", tmp_path / "host")
    assert elf_machine(busybox_in_layers(tmp_path / "host", tmp_path / "y")) == EM_X86_64


def test_arch_overrides_the_system_and_is_checked(tmp_path: Path) -> None:
    nix_file = system_nix(tmp_path)
    argv = ("--nix-file", nix_file, "-A", "busybox", "--system", "aarch64-linux", "--arch", "amd64")
    proc = nix_image(*argv, "--out", tmp_path / "o1", check=False)
    assert_one_line_error(proc, "is an ELF executable for arm64", "architecture is amd64")
    nix_image(*argv, "--out", tmp_path / "o2", OPT_OUT)
    assert image_parts(tmp_path / "o2")[2]["architecture"] == "amd64"


def test_system_picks_the_flake_package_of_that_system(tmp_path: Path) -> None:
    flake = tmp_path / "flake"
    flake.mkdir()
    (flake / "flake.nix").write_text(
        "{ outputs = { self }: {\n"
        f"  packages.aarch64-linux.bb = {arm64_busybox().fixed_output_nix()};\n"
        f"  packages.x86_64-linux.bb = {HOST_BUSYBOX};\n"
        "}; }\n"
    )
    for system, machine in (("aarch64-linux", EM_AARCH64), ("x86_64-linux", EM_X86_64)):
        out = tmp_path / system
        nix_image("--flake", f"{flake}#bb", "--system", system, "--out", out)
        assert image_parts(out)[2]["architecture"] == {"aarch64-linux": "arm64", "x86_64-linux": "amd64"}[system]
        assert elf_machine(busybox_in_layers(out, tmp_path / system / "x")) == machine


def test_unknown_system_is_a_usage_error(tmp_path: Path) -> None:
    proc = nix_image("--store-path", build("busyboxPkg"), "--system", "vax-vms", "--out", tmp_path / "o", check=False)
    assert_one_line_error(proc, "--system", "'vax-vms'", "aarch64-linux")
    assert proc.returncode == 2


def test_foreign_executables_are_refused_in_a_streamed_docker_archive(tmp_path: Path) -> None:
    busybox = build("busyboxPkg")
    before = snapshot(tmp_path)
    out = tmp_path / "img.tar"
    proc = nix_image("--store-path", busybox, "--out", out, "--arch", "arm64", "--format", "docker-archive",
                     "--no-cache", check=False)  # fmt: skip
    assert_one_line_error(proc, f"'{busybox}/bin/busybox' is an ELF executable for amd64", OPT_OUT)
    assert proc.returncode == 1
    assert snapshot(tmp_path) == before, "a refused image wrote something"
