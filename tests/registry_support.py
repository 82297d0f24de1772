"""Real registries for tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1, with
no auth, htpasswd auth, or token auth backed by a small JWT token server; and a fault-injecting,
request-counting HTTP proxy in front of it. Everything binds to loopback and every wait is
bounded."""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # answering (401 is fine)
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up within {timeout}s")


@dataclass
class TokenServer:
    """Issues RS256 JWTs the way distribution's token auth expects (x5c chain in the header)."""

    users: dict[str, str]
    port: int = field(default_factory=free_port)
    issuer: str = "layerforge-test-issuer"
    service: str = "layerforge-test-registry"
    requests: int = 0

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layerforge test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": f"{now}-{random.random()}", "access": access,
        }  # fmt: skip
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    allowed = actions.split(",") if user else [a for a in actions.split(",") if a == "pull"]
                    access.append({"type": kind, "name": name, "actions": allowed})
                body = json.dumps({"token": server._jwt(user, access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class Registry:
    """``docker-registry serve`` on 127.0.0.1 with its own storage."""

    def __init__(self, root: Path, auth: str | None = None, users: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.auth = auth
        self.users = users or {}
        self.token: TokenServer | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.root / 'storage'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
            "  relativeurls: true",
            "  secret: layerforge-test-secret",
        ]
        if self.auth == "htpasswd":
            path = self.root / "htpasswd"
            path.write_text(
                "".join(
                    f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                    for u, p in self.users.items()
                )
            )
            lines += ["auth:", "  htpasswd:", "    realm: layerforge-test", f"    path: {path}"]
        elif self.auth == "token":
            self.token = TokenServer(self.users)
            bundle = self.root / "token-ca.pem"
            bundle.write_bytes(self.token.cert_pem())
            lines += [
                "auth:", "  token:", f"    realm: {self.token.realm}", f"    service: {self.token.service}",
                f"    issuer: {self.token.issuer}", f"    rootcertbundle: {bundle}",
            ]  # fmt: skip
        return "\n".join(lines) + "\n"

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(self._config())
        if self.token is not None:
            self.token.start()
        with open(self.root / "log", "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=log
            )
        wait_http(f"http://{self.host}/v2/")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.token is not None:
            self.token.stop()

    def manifest_exists(self, repo: str, reference: str) -> bool:
        """Ask the registry directly (no proxy); only for registries without auth."""
        req = urllib.request.Request(
            f"http://{self.host}/v2/{repo}/manifests/{reference}",
            method="HEAD",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"},
        )
        try:
            urllib.request.urlopen(req, timeout=5)
            return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise


class FaultProxy:
    """HTTP proxy in front of a registry: counts requests and body bytes, and with a seeded RNG
    answers 500/503/429 or drops the connection half-way through a request body."""

    def __init__(self, upstream: str, fault_rate: float = 0.0, seed: int = 1, latency: float = 0.0) -> None:
        self.upstream = upstream
        self.fault_rate = fault_rate
        self.latency = latency  # seconds added to every request, like a network round trip
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.port = free_port()
        self.requests: Counter[str] = Counter()
        self.body_bytes = 0
        self.faults: Counter[str] = Counter()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.body_bytes = 0

    def _fault(self) -> str | None:
        with self.lock:
            if self.rng.random() >= self.fault_rate:
                return None
            return self.rng.choice(["500", "503", "429", "drop"])

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                if proxy.latency:
                    time.sleep(proxy.latency)
                length = int(self.headers.get("Content-Length") or 0)
                path = urllib.parse.urlsplit(self.path).path
                kind = f"{self.command} {'/'.join(path.split('/')[3:5]) if path.startswith('/v2/') else path}"
                with proxy.lock:
                    proxy.requests[kind] += 1
                fault = proxy._fault()
                if fault == "drop":
                    self.rfile.read(length // 2)
                    with proxy.lock:
                        proxy.faults["drop"] += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.body_bytes += len(body)
                if fault is not None:
                    with proxy.lock:
                        proxy.faults[fault] += 1
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                send_body = body if length or self.command in ("PUT", "POST", "PATCH") else None
                conn.request(self.command, self.path, body=send_body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                upstream_length = resp.getheader("Content-Length") or "0"
                self.send_header("Content-Length", upstream_length if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
