"""Shallow bases: `layerforge pull --shallow` stores manifests and configs only, a nix image is
built on it without one base layer blob leaving the registry (GETs counted at a proxy), and
`push` makes the base layers present at the target without the layout holding them: mounted
on the base's registry, relayed (fetched, verified, uploaded) to another one. Readers that
need layer bytes fail in one line naming the blob."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerforge.model.annotations import SHALLOW
from tests.helpers import assert_one_line_error, image_parts, run, run_cli, verify_blobs
from tests.nix_support import build
from tests.pull_support import Seeded, layers_of, seed, skopeo_copy, storage_blob
from tests.push_support import SECRET, assert_secret_hidden, isolate, multi_layer_image, push
from tests.registry_support import FaultProxy, Registry
from tests.runtime_support import Podman


@dataclass(frozen=True)
class Registries:
    seeded: Seeded
    root: Path  # the seeded registry's directory
    proxy: FaultProxy  # in front of the seeded registry: every request logged
    other: Registry  # a second registry, empty at first


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nix_cli_env: None) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def regs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("shallow-registry")
    reg = Registry(root / "registry").start()
    other = Registry(root / "other").start()
    proxy = FaultProxy(reg.host).start()
    try:
        yield Registries(seed(root / "seed", reg.host), root / "registry", proxy, other)
    finally:
        proxy.stop()
        other.stop()
        reg.stop()


def cli(command: str, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(command, *map(str, args), check=check, env=os.environ.copy())


def blob_gets(proxy: FaultProxy, repo: str) -> list[str]:
    prefix = f"GET /v2/{repo}/blobs/"
    return [line.removeprefix(prefix) for line in proxy.log if line.startswith(prefix)]


def shallow_nix_image(tmp_path: Path, regs: Registries) -> tuple[Path, list[str]]:
    """A nix image on the amd64 base pulled --shallow through the proxy; the base's layers."""
    s, proxy = regs.seeded, regs.proxy
    base = tmp_path / "base"
    amd64 = s.children["amd64"]
    proxy.log.clear()
    cli("pull", f"{proxy.host}/base/multi@{amd64}", "--out", base, "--tag", "b", "--shallow")
    layers = [str(layer["digest"]) for layer in layers_of(s.host, "base/multi", amd64)]
    index = json.loads((base / "index.json").read_text())
    assert index["annotations"] == {SHALLOW: f"{proxy.host}/base/multi"}
    assert not any((base / "blobs" / "sha256" / d.split(":")[1]).exists() for d in layers)

    busybox = build("busyboxPkg")
    out = tmp_path / "app"
    cli("nix-image", "--store-path", busybox, "--from-image", f"{base}:b", "--out", out, "--tag", "latest",
        "--entrypoint", json.dumps([f"{busybox}/bin/busybox"]))  # fmt: skip
    _, manifest, config = image_parts(out, "latest")
    assert [m["digest"] for m in manifest["layers"][: len(layers)]] == layers
    assert "FROM_BASE=amd64" in config["config"]["Env"]
    assert json.loads((out / "index.json").read_text())["annotations"] == {SHALLOW: f"{proxy.host}/base/multi"}
    # Only the config blob ever left the registry: no layer of the base was downloaded.
    config_digest = json.loads((base / "blobs" / "sha256" / amd64.split(":")[1]).read_bytes())["config"]["digest"]
    assert blob_gets(proxy, "base/multi") == [config_digest]
    return out, layers


def test_package_on_a_shallow_base_fetches_no_layer_and_readers_name_the_blob(tmp_path: Path, regs: Registries) -> None:
    out, layers = shallow_nix_image(tmp_path, regs)
    first = layers[0]
    for argv in (
        ("export-docker", f"{out}:latest", "--out", tmp_path / "app.tar"),
        ("load", "--runtime", "podman", "--tag", "shallow/app:1", f"{out}:latest"),
        ("nydus-image", f"{out}:latest", "--out", tmp_path / "nydus"),
    ):
        proc = cli(*argv, check=False)
        assert_one_line_error(proc, first, "shallow")
        assert "corrupt" not in proc.stderr
    assert not (tmp_path / "app.tar").exists()
    assert not (tmp_path / "nydus").exists()
    assert blob_gets(regs.proxy, "base/multi")[1:] == []  # the readers fetched nothing either


def test_publish_mounts_on_the_base_registry_and_streams_to_another(
    tmp_path: Path, regs: Registries, podman: Podman
) -> None:
    out, layers = shallow_nix_image(tmp_path, regs)
    proxy = regs.proxy

    # The base's registry: each base layer mounted from the base's repository, none uploaded.
    proxy.log.clear()
    pushed = cli("push", f"{out}:latest", f"{proxy.host}/shallow/app:1")
    assert f"{len(layers)} mounted" in pushed.stderr, pushed.stderr
    mounts = [line for line in proxy.log if line.startswith("POST /v2/shallow/app/blobs/uploads/?mount=")]
    assert sorted(m.split("mount=")[1].split("&")[0] for m in mounts) == sorted(layers)
    assert all("from=base/multi" in m for m in mounts)
    assert blob_gets(proxy, "base/multi") == []
    again = cli("push", f"{out}:latest", f"{proxy.host}/shallow/app:1")  # nothing to send, nothing missing
    assert "(unchanged)" in again.stdout and "0 pushed" in again.stderr, again.stderr
    config = Path(os.environ["DOCKER_CONFIG"])
    config.mkdir(exist_ok=True)
    (config / "config.json").write_text('{"auths": {}}')  # podman reads it, and wants it there
    podman.pull_loopback(f"{regs.seeded.host}/shallow/app:1")
    ran = podman.run_image(f"{regs.seeded.host}/shallow/app:1", "cat", "/etc/hello-amd64")
    assert ran.stdout == "hello from amd64\n"

    # Another registry: the base layers streamed from the base's registry, verified, uploaded.
    proxy.log.clear()
    other = regs.other.host
    relayed = cli("push", f"{out}:latest", f"{other}/copy/app:1")
    assert f"{len(layers)} streamed" in relayed.stderr, relayed.stderr
    assert sorted(blob_gets(proxy, "base/multi")) == sorted(layers)
    copied = tmp_path / "copied"
    skopeo_copy(f"docker://{other}/copy/app:1", f"oci:{copied}:c")
    assert verify_blobs(copied) >= len(layers) + 2
    assert run("skopeo", "inspect", f"oci:{copied}:c").returncode == 0


def test_relay_sends_each_registry_only_its_own_credentials(tmp_path: Path) -> None:
    """Source and target with basic auth, each knowing one user: the source's credentials go
    to the source only, the target's to the target only, and neither appears in the output."""
    src = Registry(tmp_path / "src", auth="htpasswd", users={"alice": SECRET}).start()
    dst = Registry(tmp_path / "dst", auth="htpasswd", users={"bob": SECRET + "-b"}).start()
    src_proxy, dst_proxy = FaultProxy(src.host).start(), FaultProxy(dst.host).start()
    try:
        alice = base64.b64encode(f"alice:{SECRET}".encode()).decode()
        bob = base64.b64encode(f"bob:{SECRET}-b".encode()).decode()
        config = Path(os.environ["DOCKER_CONFIG"])
        config.mkdir(parents=True)
        (config / "config.json").write_text(
            json.dumps({"auths": {src_proxy.host: {"auth": alice}, dst_proxy.host: {"auth": bob}}})
        )
        image = multi_layer_image(tmp_path, layers=2, size=30_000)
        push(f"{image}:v1", f"{src_proxy.host}/team/base:1")
        shallow = tmp_path / "shallow"
        cli("pull", f"{src_proxy.host}/team/base:1", "--out", shallow, "--shallow")
        src_proxy.auths.clear()
        relayed = cli("push", f"{shallow}:1", f"{dst_proxy.host}/team/copy:1", "-v")
        assert "2 streamed" in relayed.stderr, relayed.stderr
        assert_secret_hidden(relayed)
        assert src_proxy.auths and set(src_proxy.auths) == {f"Basic {alice}"}
        assert dst_proxy.auths and set(dst_proxy.auths) == {f"Basic {bob}"}
    finally:
        dst_proxy.stop()
        src_proxy.stop()
        dst.stop()
        src.stop()


def test_hostile_shallow_sources_and_tampered_relays_are_refused(tmp_path: Path, regs: Registries) -> None:
    """A shallow source that is not REGISTRY/REPO is an error before anything is sent; bytes a
    source sends that are not the blob's are refused, and the target gets no manifest."""
    s, other = regs.seeded, regs.other.host
    shallow = tmp_path / "shallow"
    cli("pull", f"{s.host}/base/zstd@{s.compressed['zstd']}", "--out", shallow, "--tag", "z", "--shallow")
    (layer,) = layers_of(s.host, "base/zstd", s.compressed["zstd"])
    index_path = shallow / "index.json"
    good = index_path.read_text()
    index = json.loads(good)
    for bad in ("127.0.0.1:1/../../x", "no-repo", "host\x1b[2J/repo"):
        index["annotations"][SHALLOW] = bad
        index_path.write_text(json.dumps(index))
        proc = cli("push", f"{shallow}:z", f"{other}/evil/app:1", check=False)
        assert_one_line_error(proc, "shallow source")
        assert "\x1b" not in proc.stderr
    index_path.write_text(good)

    # The registry's copy of the layer tampered with (same size): the relay refuses it.
    stored = storage_blob(regs.root, str(layer["digest"]))
    original = stored.read_bytes()
    stored.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    try:
        proc = cli("push", f"{shallow}:z", f"{other}/tampered/app:1", check=False)
    finally:
        stored.write_bytes(original)
    assert_one_line_error(proc, str(layer["digest"]))
    assert not regs.other.manifest_exists("tampered/app", "1")
