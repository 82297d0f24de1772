"""`layerforge index`: multi-platform indexes of an amd64 and an arm64 Nix image (the arm64
closure is Debian's busybox-static:arm64, no arm64 builder), checked with skopeo, podman and
a real loopback registry; duplicate platforms and lying indexes refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.foreign_support import EM_AARCH64, arm64_busybox, elf_machine
from tests.helpers import assert_one_line_error, blob_path, read_json_blob, run, run_cli, snapshot, verify_blobs
from tests.nix_support import NIX_CONFIG, build, nix_image
from tests.nydus_support import blob_dir, bootstrap_bytes
from tests.nydus_support import check as nydus_check
from tests.registry_support import Registry
from tests.runtime_support import Podman
from tests.test_nix_platforms import busybox_in_layers


@dataclass(frozen=True)
class Images:
    amd64: Path
    arm64: Path
    index: Path  # tagged "multi": both


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    root = tmp_path_factory.mktemp("index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NIX_CONFIG", NIX_CONFIG)
        mp.setenv("LAYERFORGE_CACHE_DIR", str(root / "cache"))
        host, arm = build("busyboxPkg"), arm64_busybox().store_path
        for path, arch in ((host, "amd64"), (arm, "arm64")):
            nix_image("--store-path", path, "--copy-to-root", path, "--arch", arch, "--out", root / arch,
                      "--entrypoint", "/bin/echo", "--cmd", json.dumps([f"hello from {arch}"]))  # fmt: skip
    run_cli("index", f"{root / 'amd64'}:latest", f"{root / 'arm64'}:latest", "--out", root / "idx", "--tag", "multi")
    yield Images(root / "amd64", root / "arm64", root / "idx")


def platforms(raw: dict[str, object]) -> list[tuple[str, str, str | None]]:
    return [
        (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))  # type: ignore[index]
        for m in raw["manifests"]  # type: ignore[attr-defined]
    ]


def test_index_lists_both_platforms_and_skopeo_picks_arm64(images: Images, tmp_path: Path) -> None:
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{images.index}:multi").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert platforms(raw) == [("linux", "amd64", None), ("linux", "arm64", "v8")]
    assert verify_blobs(images.index) > 0
    picked = tmp_path / "picked"
    run("skopeo", "--override-arch", "arm64", "copy", f"oci:{images.index}:multi", f"oci:{picked}:arm")
    assert elf_machine(busybox_in_layers_of(picked, "arm", tmp_path / "x")) == EM_AARCH64


def busybox_in_layers_of(layout: Path, ref: str, tmp: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == ref]
    copy = tmp / "latest"
    shutil.copytree(layout, copy)
    entry["annotations"]["org.opencontainers.image.ref.name"] = "latest"
    (copy / "index.json").write_text(json.dumps({**index, "manifests": [entry]}))
    return busybox_in_layers(copy, tmp / "files")


def test_podman_runs_the_amd64_image_of_the_index(images: Images, podman: Podman) -> None:
    assert podman.run(images.index, "multi").stdout == "hello from amd64\n"


def test_nested_indexes_are_flattened(images: Images, tmp_path: Path) -> None:
    only_amd64 = tmp_path / "one"
    run_cli("index", f"{images.amd64}:latest", "--out", only_amd64)
    out = tmp_path / "flat"
    run_cli("index", f"{only_amd64}:latest", f"{images.arm64}:latest", "--out", out, "--tag", "t")
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{out}:t").stdout)
    assert [m["mediaType"] for m in raw["manifests"]] == ["application/vnd.oci.image.manifest.v1+json"] * 2
    assert raw == json.loads(run("skopeo", "inspect", "--raw", f"oci:{images.index}:multi").stdout)


def test_two_images_for_one_platform_are_refused(images: Images, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    out = tmp_path / "dup"
    proc = run_cli("index", f"{images.index}:multi", f"{images.amd64}:latest", "--out", out, "--label", "//a:multi",
                   "--label", "//a:app-amd64", check=False)  # fmt: skip
    assert_one_line_error(proc, "//a:multi and //a:app-amd64 are both linux/amd64")
    assert proc.returncode == 1
    assert snapshot(tmp_path) == before and not out.exists()


def test_an_index_lying_about_a_platform_is_refused(images: Images, tmp_path: Path) -> None:
    lying = tmp_path / "lying"
    shutil.copytree(images.index, lying)
    index = json.loads((lying / "index.json").read_text())
    (entry,) = index["manifests"]
    nested = read_json_blob(lying, entry["digest"])
    nested["manifests"][0]["platform"] = {"os": "linux", "architecture": "riscv64"}
    data = json.dumps(nested).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob_path(lying, digest).write_bytes(data)
    entry.update(digest=digest, size=len(data))
    (lying / "index.json").write_text(json.dumps(index))
    proc = run_cli("index", f"{lying}:multi", "--out", tmp_path / "o", check=False)
    assert_one_line_error(proc, "as linux/riscv64, but its config says linux/amd64")


def test_the_index_pushes_to_a_registry_with_both_platforms(images: Images, registry: Registry) -> None:
    run_cli("push", f"{images.index}:multi", f"{registry.host}/team/app:1.0")
    ref = f"docker://{registry.host}/team/app:1.0"
    raw = json.loads(run("skopeo", "inspect", "--tls-verify=false", "--raw", ref).stdout)
    assert platforms(raw) == [("linux", "amd64", None), ("linux", "arm64", "v8")]
    arm = json.loads(run("skopeo", "--override-arch", "arm64", "inspect", "--tls-verify=false", ref).stdout)
    assert arm["Architecture"] == "arm64"


@pytest.mark.parametrize("merge", [False, True])
def test_nydus_of_an_index_converts_every_platform(images: Images, tmp_path: Path, merge: bool) -> None:
    out = tmp_path / "nydus"
    run_cli("nydus-image", f"{images.index}:multi", "--out", out, "--tag", "n", *(["--merge-platform"] * merge))
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{out}:n").stdout)
    nydus = "nydus.remoteimage.v1"
    features = [(m["platform"]["architecture"], m["platform"].get("os.features", [])) for m in raw["manifests"]]
    expected = [("amd64", [nydus]), ("arm64", [nydus])]
    if merge:  # each original next to its Nydus manifest, as nydusify --merge-platform does
        expected = [("amd64", []), ("amd64", [nydus]), ("arm64", []), ("arm64", [nydus])]
        source = json.loads(run("skopeo", "inspect", "--raw", f"oci:{images.index}:multi").stdout)
        assert [m["digest"] for m in raw["manifests"][::2]] == [m["digest"] for m in source["manifests"]]
    assert features == expected
    verify_blobs(out)
    stores = {"amd64": build("busyboxPkg"), "arm64": arm64_busybox().store_path}
    for m in raw["manifests"]:
        if nydus not in m["platform"].get("os.features", []):
            continue
        manifest = read_json_blob(out, m["digest"])
        boot = tmp_path / f"{m['digest'][7:]}.boot"
        boot.write_bytes(bootstrap_bytes(out, manifest))
        blobs, _ = blob_dir(out, manifest, tmp_path / f"blobs-{m['digest'][7:]}")
        report = nydus_check(boot, blobs)
        assert f"{stores[m['platform']['architecture']]}/bin/busybox" in report.files


def test_export_docker_picks_a_platform_from_the_index(images: Images, tmp_path: Path) -> None:
    archive = tmp_path / "arm.tar"
    run_cli("export-docker", f"{images.index}:multi", "--platform", "linux/arm64", "--out", archive)
    config = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}").stdout)
    assert config["architecture"] == "arm64"
    proc = run_cli("export-docker", f"{images.index}:multi", "--out", tmp_path / "any.tar", check=False)
    assert_one_line_error(proc, "--platform", "linux/amd64, linux/arm64/v8")
    assert not (tmp_path / "any.tar").exists()
