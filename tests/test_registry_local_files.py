"""The push's local inputs besides the layout, read as hostile: a corrupt known-blobs cache
is ignored with one warning (and replaced atomically), a malformed credentials file is a
one-line error naming it. Against a real docker-registry on loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import image_parts
from tests.push_support import bounded_push, isolate, multi_layer_image, one_error_line
from tests.registry_support import FaultProxy, Registry


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[1, 2]",
        b"[" * 100_000,
        b'{"REGISTRY": []}',
        b'{"REGISTRY": {"DIGEST": "team/other"}}',
        b'{"REGISTRY": {"DIGEST": [1, null, ["x"]]}}',
        b'{"REGISTRY": {"DIGEST": ["team/other&evil=1", "Team/Other"]}}',
        b"\xff\xfe",
        "fifo",
        "directory",
    ],
)
def test_a_corrupt_known_blobs_cache_is_ignored_with_a_warning(
    tmp_path: Path, proxy: FaultProxy, content: bytes | str
) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    assert bounded_push(f"{src}:v1", f"{proxy.host}/team/other:1").returncode == 0  # a mount would be possible
    layer = image_parts(src, "v1")[1]["layers"][0]["digest"]
    cache = Path(os.environ["LAYERFORGE_CACHE_DIR"]) / "registry-blobs.json"
    cache.unlink()
    if content == "fifo":
        os.mkfifo(cache)
    elif content == "directory":
        cache.mkdir()
    else:
        assert isinstance(content, bytes)
        cache.write_bytes(content.replace(b"REGISTRY", proxy.host.encode()).replace(b"DIGEST", layer.encode()))
    proxy.log.clear()
    proc = bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1")
    assert proc.returncode == 0 and "(pushed)" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert 1 <= len(warnings) <= 2 and all("known-blobs cache" in w for w in warnings), proc.stderr
    assert not any("mount=" in request for request in proxy.log), "no mount from a malformed entry"
    if content != "directory":
        saved = json.loads(cache.read_bytes())  # replaced, atomically, by a well-formed one
        assert saved[proxy.host] and all(isinstance(v, list) for v in saved[proxy.host].values())
        # No scratch file left: the memory and the receipt of the push, each written atomically.
        assert sorted(p.name for p in cache.parent.iterdir()) == ["push-receipts", "registry-blobs.json"]
        assert all(p.suffix == ".json" for p in (cache.parent / "push-receipts").iterdir())


@pytest.mark.parametrize(
    "config",
    [
        b"[]",
        b'{"auths": ["x"]}',
        b'{"auths": {"REGISTRY": "alice:pw"}}',
        b'{"auths": {"REGISTRY": {"auth": 5}}}',
        b'{"auths": {"REGISTRY": {"username": ["alice"], "password": "pw"}}}',
        b'{"credHelpers": ["x"]}',
        b'{"credHelpers": {"REGISTRY": "../../../bin/sh"}}',
        b'{"credsStore": 5}',
        b"[" * 100_000,
        b"\xff",
    ],
)
def test_malformed_credential_files_are_one_line(tmp_path: Path, registry: Registry, config: bytes) -> None:
    path = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(config.replace(b"REGISTRY", registry.host.encode()))
    src = multi_layer_image(tmp_path, layers=1)
    line = one_error_line(bounded_push(f"{src}:v1", f"{registry.host}/team/app:1"))
    assert "config.json" in line, line
    assert not registry.manifest_exists("team/app", "1")
