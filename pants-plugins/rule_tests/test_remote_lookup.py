"""Parsing a BUILD file with a digest-less remote_oci_image (what `pants list ::` does) asks
the registry what the tag names, and nothing the push would not: a token realm on another
origin over plain HTTP is never contacted and the error is one line naming the target and
field. (tests/test_remote_tag.py holds the lookup's other cases, without Pants.)"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from layerforge_pants import register


class Logged(http.server.ThreadingHTTPServer):
    """A loopback origin that records every request and answers with ``status`` and
    ``headers`` (``{port}`` in a header value is the other server's port)."""

    def __init__(self, host: str, status: int, headers: dict[str, str]) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.status, self.headers, self.other_port = status, headers, 0
        log = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                log.seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(log.status)
                for name, value in log.headers.items():
                    self.send_header(name, value.format(port=log.other_port))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def servers() -> Iterator[tuple[Logged, Logged]]:
    realm = Logged("127.0.0.2", 200, {"Content-Type": "application/json"})
    registry = Logged("127.0.0.1", 401, {"WWW-Authenticate": 'Bearer realm="http://127.0.0.2:{port}/token"'})
    registry.other_port = realm.port
    yield registry, realm
    registry.stop()
    realm.stop()


def test_digest_lookup_never_asks_a_plain_http_realm_elsewhere(servers: tuple[Logged, Logged]) -> None:
    registry, realm = servers
    rule_runner = RuleRunner(target_types=register.target_types(), rules=[])
    rule_runner.write_files({"src/BUILD": f'remote_oci_image(name="x", image="127.0.0.1:{registry.port}/team/app:1")'})
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src", target_name="x"))
    line = str(e.value).strip().splitlines()[-1]
    assert "The `image` field of src:x has no digest" in line, line
    assert f"token realm http://127.0.0.2:{realm.port} is another origin over plain HTTP" in line, line
    assert realm.seen == [], "the plain-HTTP realm on another origin was contacted"
    assert registry.seen == [("/v2/team/app/manifests/1", None)]
