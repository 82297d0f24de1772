"""oci_image_index and nix_oci_image(system=...) through real Pants runs: one Nix file
evaluated for x86_64-linux and aarch64-linux (the arm64 closure is Debian's busybox-static:arm64,
never built here), both in one index, checked with skopeo, published to a real loopback
registry and pulled and run by podman; foreign executables and duplicate platforms refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.foreign_support import EM_AARCH64, arm64_busybox, elf_machine
from tests.helpers import image_parts, run
from tests.nix_support import build
from tests.pants_support import PantsRepo
from tests.registry_support import Registry
from tests.runtime_support import Podman
from tests.test_index import busybox_in_layers_of, platforms
from tests.test_nix_platforms import HOST_BUSYBOX

BUILD = """
nix_oci_image(
    name="app-amd64",
    nix_file="systems.nix",
    attr="busybox",
    system="x86_64-linux",
    copy_to_root_attrs=["busybox"],
    entrypoint=["/bin/echo"],
    cmd=["hello from amd64"],
)
nix_oci_image(
    name="app-arm64",
    nix_file="systems.nix",
    attr="busybox",
    system="aarch64-linux",
    copy_to_root_attrs=["busybox"],
    entrypoint=["/bin/echo"],
    cmd=["hello from arm64"],
)
oci_image_index(
    name="multi",
    images=[":app-amd64", ":app-arm64"],
    repository="team/multi",
    image_tags=["1.0", "latest"],
)
nix_oci_image(name="foreign", store_paths=["{host}"], arch="arm64")
nix_oci_image(name="foreign-allowed", store_paths=["{host}"], arch="arm64", allow_foreign_executables=True)
oci_image_index(name="dup", images=[":multi", ":foreign-allowed"], skip_push=True)
nydus_image(name="multi-nydus", source_image=":multi", merge_platform=True, skip_push=True)
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> PantsRepo:
    toml = f'\n[layerforge.registries.local]\naddress = "{registry.host}"\ndefault = true\n'
    repo = PantsRepo(tmp_path_factory.mktemp("pants") / "repo", toml)
    repo.write(
        "app/systems.nix",
        "{ system ? builtins.currentSystem }:\n"
        f'{{ busybox = if system == "aarch64-linux"\n'
        f"  then {arm64_busybox().fixed_output_nix()}\n"
        f"  else {HOST_BUSYBOX}; }}\n",
    )
    repo.write("app/BUILD", BUILD.format(host=build("busyboxPkg")))
    return repo


def test_index_of_two_systems_packages_and_publishes(repo: PantsRepo, registry: Registry, podman: Podman,
                                                     tmp_path: Path) -> None:  # fmt: skip
    out = repo.run("package", "app:multi", "app:app-amd64", "app:app-arm64", "app:foreign-allowed", "app:multi-nydus")
    assert out.returncode == 0, out.stderr
    layout = repo.root / "dist" / "app" / "multi"
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:1.0").stdout)
    assert platforms(raw) == [("linux", "amd64", None), ("linux", "arm64", "v8")]
    for name, arch in (("app-amd64", "amd64"), ("app-arm64", "arm64"), ("foreign-allowed", "arm64")):
        assert image_parts(repo.root / "dist" / "app" / name)[2]["architecture"] == arch
    nydus_layout = repo.root / "dist" / "app" / "multi-nydus"
    nydus = json.loads(run("skopeo", "inspect", "--raw", f"oci:{nydus_layout}:latest").stdout)
    features = [(m["platform"]["architecture"], m["platform"].get("os.features")) for m in nydus["manifests"]]
    n = ["nydus.remoteimage.v1"]
    assert features == [("amd64", None), ("amd64", n), ("arm64", None), ("arm64", n)]
    picked = tmp_path / "picked"
    run("skopeo", "--override-arch", "arm64", "copy", f"oci:{layout}:1.0", f"oci:{picked}:arm")
    assert elf_machine(busybox_in_layers_of(picked, "arm", tmp_path / "x")) == EM_AARCH64

    out = repo.run("publish", "app:multi")
    assert out.returncode == 0, out.stdout + out.stderr
    local = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:1.0").stdout)
    for tag in ("1.0", "latest"):
        remote = run("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/team/multi:{tag}")
        assert json.loads(remote.stdout) == local
    image = podman.pull_loopback(f"{registry.host}/team/multi:1.0")
    assert podman.run_image(image).stdout == "hello from amd64\n"


def test_foreign_executables_and_duplicate_platforms_are_refused(repo: PantsRepo) -> None:
    host = build("busyboxPkg")
    out = repo.run("package", "app:foreign")
    assert out.returncode != 0
    assert f"'{host}/bin/busybox' is an ELF executable for amd64, but the image's architecture is arm64" in out.stderr
    assert "allow_foreign_executables=True" in out.stderr and "app:foreign" in out.stderr, out.stderr
    out = repo.run("package", "app:dup")
    assert out.returncode != 0
    assert "app:multi and app:foreign-allowed are both linux/arm64/v8" in out.stderr, out.stderr
