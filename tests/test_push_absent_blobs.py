"""`layerforge push` of a layout that lacks some of its layer blobs (what `pants publish` gives
it: the documents and the layers the registry lacks), against a real docker-registry through a
counting proxy: a blob absent from the layout is skipped when the target has it, mounted when
another repository of the registry is known to hold it, and one the registry lacks fails the
push in one line before anything is uploaded. The dry run marks such blobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerforge.registry.client import RegistryClient
from tests.helpers import blob_path, image_parts, run, run_cli, verify_blobs
from tests.push_support import isolate, multi_layer_image, one_error_line, push
from tests.registry_support import FaultProxy, Registry


@pytest.fixture(autouse=True)
def _isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def _layers(layout: Path) -> list[tuple[str, int]]:
    _, manifest, _ = image_parts(layout, "v1")
    return [(layer["digest"], layer["size"]) for layer in manifest["layers"]]


def _upload(host: str, repo: str, layout: Path, blobs: list[tuple[str, int]]) -> None:
    client = RegistryClient(host)
    try:
        for digest, size in blobs:
            client.upload_blob(repo, digest, blob_path(layout, digest), size)
    finally:
        client.close()


def _uploads(proxy: FaultProxy) -> int:
    return sum(n for kind, n in proxy.requests.items() if kind.split()[0] in ("POST", "PUT", "PATCH"))


def test_absent_blobs_the_registry_has_are_skipped(tmp_path: Path, registry: Registry, proxy: FaultProxy) -> None:
    layout = multi_layer_image(tmp_path, layers=4, size=200_000)
    layers = _layers(layout)
    held, (missing, missing_size) = layers[:-1], layers[-1]
    _upload(registry.host, "team/app", layout, held)
    for digest, _ in held:
        blob_path(layout, digest).unlink()

    plan = json.loads(run_cli("push", "--dry-run", "--json", f"{layout}:v1", f"{proxy.host}/team/app:v1").stdout)
    actions = {b["digest"]: (b["action"], b.get("absent", False)) for b in plan["blobs"]}
    assert {actions[d] for d, _ in held} == {("present", True)}
    assert actions[missing] == ("push", False)

    proxy.reset_counts()
    out = push(f"{layout}:v1", f"{proxy.host}/team/app:v1")
    assert "blobs: 2 pushed" in out.stderr and "3 skipped" in out.stderr, out.stderr
    assert proxy.body_bytes < missing_size + 10_000, "only the missing layer, the config and the manifest"
    back = tmp_path / "back"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/team/app:v1", f"oci:{back}:x")
    verify_blobs(back)
    assert [layer["digest"] for layer in image_parts(back, "x")[1]["layers"]] == [d for d, _ in layers]


def test_absent_blobs_known_in_another_repository_are_mounted(
    tmp_path: Path, registry: Registry, proxy: FaultProxy
) -> None:
    layout = multi_layer_image(tmp_path, layers=3, size=100_000)
    push(f"{layout}:v1", f"{proxy.host}/team/base:v1")  # the known-blobs memory notes team/base
    for digest, _ in _layers(layout):
        blob_path(layout, digest).unlink()
    out = push(f"{layout}:v1", f"{proxy.host}/team/copy:v1")
    assert "0 pushed (0.0 MiB), 0 skipped, 4 mounted" in out.stderr, out.stderr  # the layers and the config
    assert registry.manifest_exists("team/copy", "v1")


def test_an_absent_blob_the_registry_lacks_fails_before_any_upload(
    tmp_path: Path, registry: Registry, proxy: FaultProxy
) -> None:
    layout = multi_layer_image(tmp_path, layers=3, size=100_000)
    (absent, _), *_ = _layers(layout)
    blob_path(layout, absent).unlink()

    text = run_cli("push", "--dry-run", f"{layout}:v1", f"{proxy.host}/team/app:v1").stdout
    assert f"blob {absent} 100" in text and "would push; not in the layout" in text, text

    proxy.reset_counts()
    failed = push(f"{layout}:v1", f"{proxy.host}/team/app:v1", check=False)
    line = one_error_line(failed)
    assert f"blob {absent} is not in '{layout}'" in line and f"{proxy.host}/team/app does not have it" in line, line
    assert _uploads(proxy) == 0 and proxy.body_bytes == 0, proxy.requests
    assert not registry.manifest_exists("team/app", "v1")
