"""`layerforge pull` from a real docker-registry on 127.0.0.1 (plain, htpasswd, token auth),
seeded with umoci and skopeo images (an index of two platforms, Docker v2 schema 2, zstd and
plain layers); what it writes judged by skopeo and umoci; hostile answers through a proxy, and
crafted indexes (repeated, shared and lying entries) from a registry that counts its GETs."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from layerforge.model import media_types
from layerforge.registry.pull import MAX_DEPTH, MAX_PULL_MANIFEST_BYTES, MAX_PULL_MANIFESTS
from layerforge.registry.transport import MANIFEST_LIMIT
from tests.helpers import (
    assert_one_line_error,
    index_entry,
    layerforge_bin,
    read_json_blob,
    run,
    run_cli,
    snapshot,
    verify_blobs,
)
from tests.pull_support import CraftedRegistry, Seeded, kill_after, layers_of, raw_manifest, seed, storage_blob
from tests.push_support import SECRET, assert_secret_hidden, isolate, multi_layer_image, push, write_docker_config
from tests.registry_support import FaultProxy, Registry, Rule


@pytest.fixture(autouse=True)
def _isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("pull-registry")
    reg = Registry(root / "registry").start()
    try:
        yield seed(root / "seed", reg.host)
    finally:
        reg.stop()


def pull(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("pull", *map(str, args), check=check, env=os.environ.copy())


def skopeo_inspect_digest(layout: Path, ref: str) -> str:
    return str(json.loads(run("skopeo", "inspect", f"oci:{layout}:{ref}").stdout)["Digest"])


def test_index_by_digest_keeps_the_registry_bytes(tmp_path: Path, seeded: Seeded) -> None:
    s = seeded
    out = tmp_path / "out"
    proc = pull(f"{s.host}/base/multi@{s.index_digest}", "--out", out, "--all-platforms", "--tag", "multi")
    assert proc.stdout.splitlines() == [f"{out}:multi {s.index_digest}"]
    entry = index_entry(out, "multi")
    assert (entry["digest"], entry["mediaType"]) == (s.index_digest, media_types.IMAGE_INDEX)
    assert (out / "blobs" / "sha256" / s.index_digest[7:]).read_bytes() == raw_manifest(s.host, "base/multi", "1")
    for arch, digest in s.children.items():
        assert (out / "blobs" / "sha256" / digest[7:]).read_bytes() == raw_manifest(s.host, "base/multi", digest)
        assert arch in read_json_blob(out, read_json_blob(out, digest)["config"]["digest"])["architecture"]
    assert verify_blobs(out) == 1 + 2 * 3  # the index; per platform a manifest, a config, a layer
    assert skopeo_inspect_digest(out, "multi") == s.index_digest
    raw = run("skopeo", "inspect", "--raw", f"oci:{out}:multi").stdout.encode()
    assert raw == raw_manifest(s.host, "base/multi", "1")


def test_one_platform_by_tag_resolves_and_unpacks(tmp_path: Path, seeded: Seeded) -> None:
    s = seeded
    out = tmp_path / "out"
    proc = pull(f"{s.host}/base/multi:1", "--out", out, "--platform", "linux/arm64")
    assert proc.stdout.splitlines() == [
        f"{out}:1 {s.children['arm64']}",
        f"{s.host}/base/multi:1 resolved to {s.index_digest}",
    ]
    assert skopeo_inspect_digest(out, "1") == s.children["arm64"]
    assert index_entry(out, "1")["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    run("umoci", "unpack", "--image", f"{out}:1", tmp_path / "bundle")
    assert (tmp_path / "bundle" / "rootfs" / "etc" / "hello-arm64").read_text() == "hello from arm64\n"
    assert not (tmp_path / "bundle" / "rootfs" / "etc" / "hello-amd64").exists()
    # Both platforms: an index of exactly the registry's two entries is the registry's index.
    both = tmp_path / "both"
    pull(f"{s.host}/base/multi:1", "--out", both, "--platform", "linux/amd64", "--platform", "linux/arm64")
    assert index_entry(both, "1")["digest"] == s.index_digest
    missing = pull(f"{s.host}/base/multi:1", "--out", tmp_path / "none", "--platform", "linux/s390x", check=False)
    assert_one_line_error(missing, "linux/s390x", "linux/amd64, linux/arm64/v8")
    assert missing.returncode == 2 and not (tmp_path / "none").exists()
    # A single-platform image is checked against --platform by its config.
    other = pull(f"{s.host}/base/none:1", "--out", tmp_path / "other", "--platform", "linux/arm64", check=False)
    assert_one_line_error(other, "--platform", "linux/amd64, not linux/arm64")
    assert other.returncode == 2 and not (tmp_path / "other").exists()


@pytest.mark.parametrize("kind", ["docker", "zstd", "none"])
def test_docker_schema2_zstd_and_plain_layers(tmp_path: Path, seeded: Seeded, kind: str) -> None:
    s = seeded
    digest = s.docker_digest if kind == "docker" else s.compressed[kind]
    out = tmp_path / "out"
    pull(f"{s.host}/base/{kind}@{digest}", "--out", out)
    entry = index_entry(out, "latest")
    assert entry["digest"] == digest
    wanted = {
        "docker": (media_types.DOCKER_MANIFEST, media_types.DOCKER_LAYER_GZIP),
        "zstd": (media_types.IMAGE_MANIFEST, media_types.LAYER_TAR_ZSTD),
        "none": (media_types.IMAGE_MANIFEST, media_types.LAYER_TAR),
    }[kind]
    manifest = read_json_blob(out, digest)
    assert (entry["mediaType"], manifest["layers"][0]["mediaType"]) == wanted
    if kind != "docker":  # skopeo's oci: transport lists OCI manifests only; the bytes stay Docker's
        assert skopeo_inspect_digest(out, "latest") == digest
    verify_blobs(out)
    listing = run_cli("inspect", f"{out}:latest").stdout
    assert digest in listing


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
def test_pull_with_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    reg = Registry(tmp_path / "reg", auth=auth, users={"alice": SECRET}).start()
    try:
        for name, value in reg.client_env().items():
            monkeypatch.setenv(name, value)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
        src = multi_layer_image(tmp_path, layers=2, size=50_000)
        pushed = push(f"{src}:v1", f"{reg.host}/team/app:1").stdout.split()[1]
        proc = pull(f"{reg.host}/team/app:1", "--out", tmp_path / "out", "-v")
        assert index_entry(tmp_path / "out", "1")["digest"] == pushed
        assert_secret_hidden(proc)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET + "-wrong")
        denied = pull(f"{reg.host}/team/app:1", "--out", tmp_path / "denied", check=False)
        assert_one_line_error(denied, "credentials from")
        assert_secret_hidden(denied)
        assert not (tmp_path / "denied").exists()
    finally:
        reg.stop()


def test_tampered_blob_is_refused_and_leaves_no_layout(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg").start()
    try:
        src = multi_layer_image(tmp_path, layers=3, size=100_000)
        push(f"{src}:v1", f"{reg.host}/team/app:1")
        layer = str(layers_of(reg.host, "team/app", "1")[1]["digest"])
        data = storage_blob(reg.root, layer)
        tampered = bytearray(data.read_bytes())
        tampered[len(tampered) // 2] ^= 0xFF
        data.write_bytes(bytes(tampered))
        canary = tmp_path / "canary"
        canary.mkdir()
        (canary / "keep").write_text("untouched\n")
        before = sorted((p.name, p.stat().st_mode) for p in canary.iterdir())
        proc = pull(f"{reg.host}/team/app:1", "--out", tmp_path / "out", "--jobs", "1", check=False)
        assert_one_line_error(proc, layer, "refused")
        assert proc.returncode == 1
        assert not (tmp_path / "out").exists()
        assert sorted((p.name, p.stat().st_mode) for p in canary.iterdir()) == before
    finally:
        reg.stop()


def test_manifest_that_is_not_the_digest_asked_for_is_refused(tmp_path: Path, seeded: Seeded) -> None:
    s = seeded
    proxy = FaultProxy(s.host).start()
    try:
        other = raw_manifest(s.host, "base/none", "1")
        proxy.rules.append(
            Rule("respond", path=f"/manifests/{s.docker_digest}",
                 headers={"Content-Type": media_types.IMAGE_MANIFEST}, body=other)
        )  # fmt: skip
        proc = pull(f"{proxy.host}/base/docker@{s.docker_digest}", "--out", tmp_path / "out", check=False)
        assert_one_line_error(proc, s.docker_digest, s.compressed["none"], "refused")
        assert not (tmp_path / "out").exists()
        # A blob answer longer than its descriptor is refused too, whatever its digest.
        config = str(json.loads(other)["config"]["digest"])
        proxy.rules[:] = [Rule("respond", path=f"/blobs/{config}", body=b"{}" * 100_000)]
        long = pull(f"{proxy.host}/base/none:1", "--out", tmp_path / "long", check=False)
        assert_one_line_error(long, config, "bytes")
        assert not (tmp_path / "long").exists()
    finally:
        proxy.stop()


def test_interrupted_pull_resumes_without_fetching_verified_blobs(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg").start()
    proxy = FaultProxy(reg.host).start()
    try:
        src = multi_layer_image(tmp_path, layers=4, size=200_000)
        digest = push(f"{src}:v1", f"{reg.host}/team/app:1").stdout.split()[1]
        layers = [str(layer["digest"]) for layer in layers_of(reg.host, "team/app", "1")]
        proxy.rules.append(Rule("stall", method="GET", path=f"/blobs/{layers[0]}"))
        out = tmp_path / "out"
        argv = [layerforge_bin(), "pull", f"{proxy.host}/team/app:1", "--out", str(out), "--jobs", "5"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            kill_after(proc, out / "blobs" / "sha256", len(layers), timeout=60)  # config + 3 layers
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        kept = {p.name for p in (out / "blobs" / "sha256").iterdir()}
        assert f"{layers[0][7:]}" not in kept and len(kept) == len(layers)
        assert not [p for p in out.rglob("*.tmp")]  # no scratch file left behind
        assert json.loads((out / "index.json").read_text())["manifests"] == []
        proxy.rules.clear()
        proxy.log.clear()
        again = pull(f"{proxy.host}/team/app:1", "--out", out)
        assert again.stdout.splitlines()[0] == f"{out}:1 {digest}"
        blob_gets = [line for line in proxy.log if line.startswith("GET ") and "/blobs/" in line]
        assert blob_gets == [f"GET /v2/team/app/blobs/{layers[0]}"]
        assert "1 fetched" in again.stderr and f"{len(layers)} already present" in again.stderr
        verify_blobs(out)
    finally:
        proxy.stop()
        reg.stop()


@pytest.fixture
def crafted() -> Iterator[CraftedRegistry]:
    reg = CraftedRegistry().start()
    try:
        yield reg
    finally:
        reg.stop()


def listed_as(entry: dict[str, Any], arch: str) -> dict[str, Any]:
    return {**entry, "platform": {"architecture": arch, "os": "linux"}}


def test_each_manifest_of_an_index_is_fetched_once(tmp_path: Path, crafted: CraftedRegistry) -> None:
    reg = crafted
    image = reg.image("amd64")
    reg.index([listed_as(image, "amd64")] * 2000, tag="copies")
    pull(f"{reg.host}/team/app:copies", "--out", tmp_path / "copies", "--all-platforms")
    assert reg.manifest_gets() == Counter({"manifests/copies": 1, f"manifests/{image['digest']}": 1})
    assert verify_blobs(tmp_path / "copies") == 4  # the index, the manifest, its config and layer
    # K indexes listing the same K images; a lattice of indexes (each lists both of the level
    # below, so 2**7 paths lead to each image): every manifest once, every blob once.
    k = 40
    images = [reg.image("amd64", note=str(i)) for i in range(k)]
    reg.index([reg.index(images, note=str(i)) for i in range(k)], tag="shared")
    level = [reg.image("amd64", note="left"), reg.image("amd64", note="right")]
    for depth in range(MAX_DEPTH - 1):
        level = [reg.index(level, note=f"{depth}-{side}") for side in range(2)]
    reg.index(level, tag="lattice")
    for tag, manifests in (("shared", 1 + 2 * k), ("lattice", 1 + 2 * (MAX_DEPTH - 1) + 2)):
        reg.gets.clear()
        pull(f"{reg.host}/team/app:{tag}", "--out", tmp_path / tag, "--all-platforms")
        gets = reg.manifest_gets()
        assert (len(gets), set(gets.values())) == (manifests, {1}), gets
        assert set(reg.gets.values()) == {1}, reg.gets
        assert verify_blobs(tmp_path / tag) == manifests + 2  # the images differ in annotations only


def test_indexes_nest_at_most_max_depth_on_every_path(tmp_path: Path, crafted: CraftedRegistry) -> None:
    reg = crafted
    chain = reg.image("amd64")
    for depth in range(MAX_DEPTH - 1):
        chain = reg.index([chain], note=str(depth))
    reg.index([chain], tag="deep")  # the image is MAX_DEPTH below the root
    pull(f"{reg.host}/team/app:deep", "--out", tmp_path / "deep", "--all-platforms")
    reg.index([chain, reg.index([chain], note="one more")], tag="deeper")  # and, by a second path, one more
    proc = pull(f"{reg.host}/team/app:deeper", "--out", tmp_path / "deeper", "--all-platforms", check=False)
    assert_one_line_error(proc, f"nest deeper than {MAX_DEPTH}")
    assert not (tmp_path / "deeper").exists()


def test_pulls_over_the_manifest_bounds_are_refused(tmp_path: Path, crafted: CraftedRegistry) -> None:
    reg = crafted
    good = reg.image("amd64")
    reg.manifests["good"] = reg.manifests[good["digest"]]
    layout = tmp_path / "layout"
    pull(f"{reg.host}/team/app:good", "--out", layout, "--tag", "good")
    before = snapshot(layout)
    # MAX_PULL_MANIFESTS images and their index; indexes of nearly MANIFEST_LIMIT bytes each.
    reg.index([reg.image("amd64", note=str(i)) for i in range(MAX_PULL_MANIFESTS)], tag="many")
    pad = "x" * (MANIFEST_LIMIT - 4096)
    big = [reg.index([good], note=f"{i}{pad}") for i in range(MAX_PULL_MANIFEST_BYTES // MANIFEST_LIMIT + 1)]
    reg.index(big, tag="big")
    for tag, bound in (
        ("many", f"more than {MAX_PULL_MANIFESTS} manifests and indexes (MAX_PULL_MANIFESTS)"),
        ("big", f"more than {MAX_PULL_MANIFEST_BYTES} bytes of manifests and indexes (MAX_PULL_MANIFEST_BYTES)"),
    ):
        for out in (layout, tmp_path / tag):
            reg.gets.clear()
            proc = pull(f"{reg.host}/team/app:{tag}", "--out", out, "--all-platforms", "--tag", tag, check=False)
            assert_one_line_error(proc, bound)
            assert proc.returncode == 1
            if tag == "many":  # refused once the index is read, before any of its entries is fetched
                assert reg.manifest_gets() == Counter({"manifests/many": 1})
        assert snapshot(layout) == before
        assert not (tmp_path / tag).exists()


def test_an_index_entry_must_be_the_platform_of_its_config(tmp_path: Path, crafted: CraftedRegistry) -> None:
    reg = crafted
    arm, amd = reg.image("arm64"), reg.image("amd64")
    reg.manifests["good"] = reg.manifests[amd["digest"]]
    reg.index([listed_as(arm, "amd64"), listed_as(amd, "arm64")], tag="lying")
    layout = tmp_path / "layout"
    pull(f"{reg.host}/team/app:good", "--out", layout, "--tag", "good")
    tags = (layout / "index.json").read_bytes()
    cases = [(["linux/amd64"], arm, "amd64", "arm64"), (["linux/arm64"], amd, "arm64", "amd64")]
    cases.append((["linux/arm64", "linux/amd64"], amd, "arm64", "amd64"))  # the whole index, as the registry's
    for platforms, image, listed, actual in cases:
        args = [a for p in platforms for a in ("--platform", p)]
        for out in (layout, tmp_path / "fresh"):
            proc = pull(f"{reg.host}/team/app:lying", "--out", out, *args, "--tag", "lying", check=False)
            assert_one_line_error(proc, image["digest"], f"linux/{listed}", f"its config says linux/{actual}")
            assert proc.returncode == 1
        assert (layout / "index.json").read_bytes() == tags
        assert not (tmp_path / "fresh").exists()


def test_all_platforms_checks_every_entry_against_its_config(tmp_path: Path, crafted: CraftedRegistry) -> None:
    reg = crafted
    arm, amd = reg.image("arm64"), reg.image("amd64")
    reg.manifests["good"] = reg.manifests[amd["digest"]]
    reg.index([listed_as(amd, "amd64"), listed_as(arm, "arm64")], tag="honest")
    reg.index([listed_as(amd, "amd64"), listed_as(arm, "amd64")], tag="lying")
    reg.index([listed_as(amd, "amd64"), reg.index([listed_as(arm, "amd64")], note="nested")], tag="nested")
    pull(f"{reg.host}/team/app:honest", "--out", tmp_path / "honest", "--all-platforms")
    layout = tmp_path / "layout"
    pull(f"{reg.host}/team/app:good", "--out", layout, "--tag", "good")
    tags = (layout / "index.json").read_bytes()
    for tag in ("lying", "nested"):
        for out in (layout, tmp_path / "fresh"):
            for shallow in ([], ["--shallow"]):
                args = ("--out", out, "--all-platforms", "--tag", tag, *shallow)
                proc = pull(f"{reg.host}/team/app:{tag}", *args, check=False)
                assert_one_line_error(proc, arm["digest"], "as linux/amd64", "its config says linux/arm64", "refused")
                assert proc.returncode == 1
        assert (layout / "index.json").read_bytes() == tags
        assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["x/y:1", "--out", "o", "--platform", "linux"], "--platform"),
        (["x/y:1", "--out", "o", "--platform", "linux/amd64", "--all-platforms"], "not allowed with"),
        (["x/y:1", "--out", "o", "--jobs", "0"], "--jobs"),
        (["x/y:1", "--out", "o", "--tag", "a b"], "--tag"),
        (["x/Y:1", "--out", "o"], "IMAGE"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run_cli("pull", *args, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "o").exists()
