"""The digest lookup the Pants plugin makes when a BUILD file holds a remote_oci_image without a
digest (pants-plugins/layerforge_pants/remote_tag.py, run here without Pants): against a
registry on loopback whose Bearer challenge names a token realm on another origin that logs
every request. The realm is asked only where the push would send a login (the registry's own
origin, or HTTPS elsewhere): never plain HTTP elsewhere; the token goes to the registry's
origin only. Every refusal is one line. And the plugin decides loopback by the shared vectors."""

from __future__ import annotations

import hashlib
import http.server
import importlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "registry_hosts.json"
MANIFEST = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
TOKEN = "tok-from-the-realm"
Answer = tuple[int, dict[str, str], bytes]


def remote_tag() -> ModuleType:
    """The plugin's module as Pants imports it (``layerforge_pants`` on the path: its
    ``hosts`` is the link to the tool's rules)."""
    plugins = str(ROOT / "pants-plugins")
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    return importlib.import_module("layerforge_pants.remote.tag")


class LoggingOrigin:
    """An HTTP server on ``host`` (loopback) that records every request (method, path,
    Authorization) and answers with ``answer(path, authorization)``."""

    def __init__(self, host: str, answer: Callable[[str, str | None], Answer]) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.answer = answer
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                origin.seen.append((self.command, self.path, auth))
                status, headers, body = origin.answer(self.path, auth)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.address = f"{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def token_answer(path: str, auth: str | None) -> Answer:
    return 200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()


@pytest.fixture
def realm_elsewhere() -> Iterator[LoggingOrigin]:
    """The second origin: 127.0.0.2, which answers a token to whoever asks."""
    server = LoggingOrigin("127.0.0.2", token_answer)
    yield server
    server.stop()


def registry_with_realm(realm: Callable[[str], str], after_token: Answer | None = None) -> LoggingOrigin:
    """A registry on 127.0.0.1 that asks for a Bearer token from ``realm(its own address)``,
    serves /token itself, and answers the manifest to that token (or ``after_token``)."""

    def answer(path: str, auth: str | None) -> Answer:
        if path.startswith("/token"):
            return token_answer(path, auth)
        if auth == f"Bearer {TOKEN}":
            return after_token or (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, MANIFEST)
        challenge = f'Bearer realm="{realm(server.address)}",service="registry.test"'
        return 401, {"WWW-Authenticate": challenge}, b""

    server = LoggingOrigin("127.0.0.1", answer)
    return server


def lookup(registry: LoggingOrigin) -> str:
    return str(remote_tag().resolve_digest(registry.address, "team/app", "1"))


def refused(registry: LoggingOrigin) -> str:
    with pytest.raises(ValueError) as e:
        lookup(registry)
    message = str(e.value)
    assert "\n" not in message and message.isprintable(), message
    return message


def test_plain_http_realm_on_another_host_is_never_asked(realm_elsewhere: LoggingOrigin) -> None:
    registry = registry_with_realm(lambda _: f"http://{realm_elsewhere.address}/token")
    try:
        message = refused(registry)
    finally:
        registry.stop()
    assert f"token realm http://{realm_elsewhere.address} is another origin over plain HTTP" in message, message
    assert realm_elsewhere.seen == [], "the plain-HTTP realm elsewhere was contacted"
    assert registry.seen == [("GET", "/v2/team/app/manifests/1", None)]


def test_plain_http_realm_on_another_port_is_never_asked(realm_elsewhere: LoggingOrigin) -> None:
    other = LoggingOrigin("127.0.0.1", token_answer)
    registry = registry_with_realm(lambda _: f"http://{other.address}/token")
    try:
        message = refused(registry)
    finally:
        registry.stop()
        other.stop()
    assert f"token realm http://{other.address} is another origin over plain HTTP" in message, message
    assert other.seen == [] and [a for _, _, a in registry.seen] == [None]


@pytest.mark.parametrize(
    "realm",
    [
        "ftp://127.0.0.2:{port}/token",
        "http://user@127.0.0.2:{port}/token",
        "http://127.0.0.2:{port}/to ken",
        "file:///etc/passwd",
        "",
    ],
)
def test_realms_that_are_no_http_url_are_never_asked(realm_elsewhere: LoggingOrigin, realm: str) -> None:
    port = realm_elsewhere.address.rsplit(":", 1)[1]
    registry = registry_with_realm(lambda _: realm.format(port=port))
    try:
        message = refused(registry)
    finally:
        registry.stop()
    assert "token realm" in message or "wants credentials" in message, message
    assert realm_elsewhere.seen == []


def test_realm_on_the_registrys_own_origin_gives_the_digest() -> None:
    registry = registry_with_realm(lambda own: f"http://{own}/token")
    try:
        digest = lookup(registry)
    finally:
        registry.stop()
    assert digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert [(path.split("?")[0], auth) for _, path, auth in registry.seen] == [
        ("/v2/team/app/manifests/1", None), ("/token", None), ("/v2/team/app/manifests/1", f"Bearer {TOKEN}")
    ]  # fmt: skip


def test_relative_realm_is_the_registrys_own_origin() -> None:
    registry = registry_with_realm(lambda _: "/token")
    try:
        assert lookup(registry).startswith("sha256:")
    finally:
        registry.stop()


def test_the_token_never_follows_a_redirect_elsewhere(realm_elsewhere: LoggingOrigin) -> None:
    away = (307, {"Location": f"http://{realm_elsewhere.address}/v2/team/app/manifests/1"}, b"")
    registry = registry_with_realm(lambda own: f"http://{own}/token", after_token=away)
    try:
        message = refused(registry)
    finally:
        registry.stop()
    assert message == "the registry answers HTTP 307"
    assert realm_elsewhere.seen == [], "the token left the registry's origin"


def test_the_plugin_decides_loopback_by_the_shared_vectors() -> None:
    hosts = sys.modules[remote_tag().is_loopback.__module__]  # the module the lookup uses
    cases = json.loads(VECTORS.read_text())["cases"]
    wrong = [c["registry"] for c in cases if (hosts.valid_registry(c["registry"]), hosts.is_loopback(c["registry"]))
             != (c["valid"], c["loopback"])]  # fmt: skip
    assert not wrong, wrong
    tool = ROOT / "python" / "layerforge" / "trust" / "hosts.py"
    assert Path(str(hosts.__file__)).read_bytes() == tool.read_bytes(), f"the plugin ships {tool} byte for byte"


def test_a_registry_that_is_no_host_is_never_asked() -> None:
    with pytest.raises(ValueError, match=r"^'-bad\.example' is not a registry host\[:port\]$"):
        remote_tag().resolve_digest("-bad.example", "team/app", "1")


@pytest.mark.parametrize("name", ["certs_d.py", "auth_files.py"])
def test_the_plugin_ships_the_tools_trust_and_login_rules_byte_for_byte(name: str) -> None:
    tool = ROOT / "python" / "layerforge" / "trust" / name
    shipped = ROOT / "pants-plugins" / "layerforge_pants" / "goals" / name
    assert shipped.read_bytes() == tool.read_bytes(), f"the plugin ships {tool} byte for byte: copy it"
