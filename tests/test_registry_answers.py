"""Hostile registry and token-service answers meet one-line errors, never tracebacks: token
services answering the wrong JSON, error bodies of odd shapes, hostile Range, Location,
Content-Length, Docker-Content-Digest and Retry-After headers, malformed referrers indexes;
registry text in messages is escaped. Against real docker-registry instances on loopback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.push_support import SECRET, attach_sbom, bounded_push, isolate, multi_layer_image, write_docker_config
from tests.push_support import one_error_line as error_line
from tests.registry_support import FaultProxy, Registry, Rule

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "\x1b" not in proc.stderr, "registry text is shown escaped"
    return error_line(proc)


# -- token services ---------------------------------------------------------------------


@pytest.fixture
def token_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    reg = Registry(tmp_path / "reg", auth="token", users={"alice": SECRET}).start()
    for name, value in reg.client_env().items():
        monkeypatch.setenv(name, value)
    write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
    yield reg
    reg.stop()


@pytest.mark.parametrize(
    "answer",
    [
        b'["token", "abc"]',
        b"42",
        b'"a-token"',
        b"null",
        b'{"token": 5}',
        b'{"token": ["abc"]}',
        b'{"access_token": {"a": 1}}',
        b'{"token": "abc\\r\\nX-Injected: 1"}',
        b'{"token": "abc", "expires_in": "300"}',
        b'{"token": "abc", "expires_in": true}',
        b'{"token": "abc", "expires_in": Infinity}',
        b'{"token": "abc", "expires_in": NaN}',
        b'{"token": "abc", "expires_in": 1e400}',
        b"{",
        b"[" * 100_000,
        b"\xff\xfe not utf-8",
        b'{"token": "\x1b[31mred"}',
    ],
)
def test_unreadable_token_answers_are_one_line(tmp_path: Path, token_registry: Registry, answer: bytes) -> None:
    assert token_registry.token is not None
    token_registry.token.answer = answer
    src = multi_layer_image(tmp_path, layers=1)
    line = one_error_line(bounded_push(f"{src}:v1", f"{token_registry.host}/team/app:1"))
    assert f"token service at https://127.0.0.1:{token_registry.token.port}" in line, line
    assert SECRET not in line


@pytest.mark.parametrize("expires_in", [-5, 0, 10**30, 2**63, 0.5, None])
def test_odd_token_lifetimes_still_work(tmp_path: Path, token_registry: Registry, expires_in: object) -> None:
    assert token_registry.token is not None
    token_registry.token.expires_in = expires_in
    src = multi_layer_image(tmp_path, layers=2)
    out = bounded_push(f"{src}:v1", f"{token_registry.host}/team/app:1")
    assert out.returncode == 0 and "(pushed)" in out.stdout, out.stderr
    assert token_registry.token.requests <= 6, "the token was reused, not fetched for every request"


# -- registry answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"errors": null}',
        b'{"errors": {"code": "MANIFEST_INVALID"}}',
        b'{"errors": [1, "x", null, {"code": 5}, {"code": ["A"]}]}',
        b'{"errors": [{"code": "\x1b[31mEVIL\\n"}]}',
        b'{"errors": "MANIFEST_INVALID"}',
        b"[1, 2]",
        b'"text"',
        b"[" * 60_000,
        b"\xff\xfe",
        b"",
    ],
)
def test_error_bodies_of_any_shape_are_one_line(tmp_path: Path, proxy: FaultProxy, body: bytes) -> None:
    proxy.rules.append(Rule("respond", method="PUT", path=r"/manifests/", status=400, body=body))
    src = multi_layer_image(tmp_path, layers=1)
    line = one_error_line(bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1"))
    assert "PUT manifest team/app:1 failed (HTTP 400" in line, line


def _rewrite(method: str, path: str, header: str, value: str) -> dict[str, Any]:
    return {"method": method, "path": path, "headers": {header: value}}


UPLOAD_START = ("POST", r"/blobs/uploads/$", "Location")
CHUNK = ("PATCH", r"/blobs/uploads/", "Range")


@pytest.mark.parametrize(
    ("hostile", "needle"),
    [
        (_rewrite(*UPLOAD_START, "http://[::1/x"), "upload Location"),
        (_rewrite(*UPLOAD_START, "http://127.0.0.1:99999/x"), "upload Location"),
        (_rewrite(*UPLOAD_START, "/v2/\x1b[31m/x"), "upload Location"),
        (_rewrite(*UPLOAD_START, "/v2/caf\xe9"), "upload Location"),
        (_rewrite(*UPLOAD_START, "ftp://127.0.0.1/x"), "upload Location"),
        (_rewrite(*UPLOAD_START, "http://alice:pw@127.0.0.1/x"), "user info"),
        (_rewrite(*CHUNK, "0-9999999999999999999"), "claims bytes 0-9999999999999999999"),
        (_rewrite(*CHUNK, "0-0"), "took none"),
        (_rewrite("PUT", r"/blobs/uploads/", "Docker-Content-Digest", "\x1b[31m" + DIGEST), "digest mismatch"),
        (_rewrite("PUT", r"/manifests/", "Docker-Content-Digest", DIGEST), "digest mismatch"),
    ],
    ids=[
        "location-bad-ipv6", "location-bad-port", "location-escape", "location-latin1", "location-ftp",
        "location-userinfo", "range-beyond-what-was-sent", "range-no-progress", "blob-digest-escape",
        "manifest-digest",
    ],
)  # fmt: skip
def test_hostile_headers_are_one_line(tmp_path: Path, proxy: FaultProxy, hostile: dict[str, Any], needle: str) -> None:
    proxy.rules.append(Rule("rewrite", **hostile))
    src = multi_layer_image(tmp_path, layers=1, size=600_000)
    chunked = ["--chunk-size", "64KiB"] if hostile["method"] == "PATCH" else []
    line = one_error_line(bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "2", *chunked))
    assert needle in line, line


@pytest.mark.parametrize("value", ["0-99999999999999999999999", "0-\xb2", "bytes=0-x", ""])
def test_unreadable_range_headers_are_ignored(tmp_path: Path, proxy: FaultProxy, value: str) -> None:
    proxy.rules.append(Rule("rewrite", **_rewrite(*CHUNK, value)))
    src = multi_layer_image(tmp_path, layers=1, size=300_000)
    proc = bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1", "--chunk-size", "64KiB")
    assert proc.returncode == 0 and "(pushed)" in proc.stdout, proc.stderr
    assert proxy.hostile["rewrite"] >= 4, "every chunk's answer was rewritten"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "abc"},
        {"Content-Length": "-5"},
        {"Content-Length": "99999999999999999999999"},
        {"Docker-Content-Digest": "not-a-digest"},
        {"Docker-Content-Digest": "\x1b[31m"},
    ],
)
def test_odd_headers_on_a_repush_do_not_break_it(tmp_path: Path, proxy: FaultProxy, headers: dict[str, str]) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    target = f"{proxy.host}/team/app:1"
    assert bounded_push(f"{src}:v1", target).returncode == 0
    proxy.rules.append(Rule("rewrite", method="HEAD", path=r"/manifests/", headers=headers))
    proc = bounded_push(f"{src}:v1", target, env={"LAYERFORGE_PUSH_FAST_PATH": "0"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    # A tag whose digest cannot be read is PUT again (and read back with a GET).
    expected = "(pushed)" if "Docker-Content-Digest" in headers else "(unchanged)"
    assert expected in proc.stdout, proc.stdout


RETRY_AFTER = [
    "nan", "1e400", "-5", "99999999999999999999", "Sun, 06 Nov 99999999999 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:37 +9999", "x" * 10_000,
]  # fmt: skip


@pytest.mark.parametrize("value", RETRY_AFTER)
def test_hostile_retry_after_is_read_safely(tmp_path: Path, proxy: FaultProxy, value: str) -> None:
    proxy.rules.append(Rule("respond", method="HEAD", path=r"/manifests/", status=429, headers={"Retry-After": value}))
    src = multi_layer_image(tmp_path, layers=1)
    line = one_error_line(bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "1"))
    assert "giving up after 1 attempts" in line and "HTTP 429" in line, line


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 60_000,
        b'{"schemaVersion": 2, "manifests": [], "annotations": [1, 2]}',
        b'{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": 5, "size": 1}]}',
        b'{"schemaVersion": 2, "manifests": [1]}',
        b'{"schemaVersion": 2, "manifests": {"a": 1}}',
        b"[]",
    ],
)
def test_a_hostile_referrers_index_is_one_line(tmp_path: Path, proxy: FaultProxy, body: bytes) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    attach_sbom(src)
    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    proxy.rules.append(Rule("respond", method="GET", path=r"/manifests/sha256-", headers=headers, body=body))
    line = one_error_line(bounded_push(f"{src}:v1", f"{proxy.host}/team/app:1"))
    assert "(the referrers index)" in line, line
