"""Real registries for tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1, with
no auth, htpasswd auth, or token auth backed by a small JWT token server (over HTTPS with a
test CA the client is told to trust, or plain HTTP); a fault-injecting, request-counting HTTP
proxy in front of it, with rules for hostile answers (redirects, foreign upload Locations,
dribbled or endless answers, stalls, acknowledged-but-dropped manifest PUTs); and a second
origin that records every Authorization header it receives. Everything binds to loopback and
every wait is bounded."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import ipaddress
import json
import random
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from layerforge.registry.client import RegistryClient
from tests.helpers import blob_path


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


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port} did not come up within {timeout}s")


def certificate(
    key: Any, common_name: str, signer: Any, issuer: x509.Name | None = None, extensions: tuple[Any, ...] = ()
) -> x509.Certificate:
    """An X.509 certificate for ``key``'s public half, valid from yesterday to tomorrow,
    signed by ``signer`` (self-signed when ``issuer`` is None)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


class LoopbackCA:
    """A certificate authority for loopback HTTPS servers; clients trust it through
    ``SSL_CERT_FILE`` (Python's ssl and Go's crypto/x509 both read it)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.BasicConstraints(ca=True, path_length=0), True)
        self.cert = certificate(self.key, "layerforge test CA", self.key, extensions=(ca,))
        self.bundle = root / "ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with a certificate for 127.0.0.1 and localhost."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
        san = (x509.SubjectAlternativeName(names), False)
        cert = certificate(key, "127.0.0.1", self.key, self.cert.subject, (san,))
        name = f"server-{x509.random_serial_number()}"
        cert_path, key_path = self.root / f"{name}.pem", self.root / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def env(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": str(self.bundle)}


def serve(
    handler: type[http.server.BaseHTTPRequestHandler], port: int, tls: LoopbackCA | None = None
) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP(S) server on 127.0.0.1:``port``, serving in a daemon thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class TokenServer:
    """Issues RS256 JWTs the way distribution's token auth expects (x5c chain in the header)."""

    users: dict[str, str]
    port: int = field(default_factory=free_port)
    issuer: str = "layerforge-test-issuer"
    service: str = "layerforge-test-registry"
    requests: int = 0
    tls: LoopbackCA | None = None  # HTTPS with a certificate from this CA; plain HTTP without
    #: The Authorization header of every request received (None when there was none).
    authorizations: list[str | None] = field(default_factory=list)
    #: What the answers say in ``expires_in`` (any JSON value, for hostile lifetimes).
    expires_in: object = 300
    #: Instead of a token: this raw body (hostile answers), or a callable writing the answer.
    answer: bytes | Callable[[http.server.BaseHTTPRequestHandler], None] | None = None

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = certificate(self.key, "layerforge test token signer", self.key)
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/token"

    def token_for(self, subject: str, repository: str) -> str:
        """A token granting push and pull on ``repository`` (for test-side clients)."""
        return self._jwt(subject, [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])

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
                server.authorizations.append(self.headers.get("Authorization"))
                if callable(server.answer):
                    server.answer(self)
                    return
                if server.answer is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(server.answer)))
                    self.end_headers()
                    self.wfile.write(server.answer)
                    return
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
                body = json.dumps({"token": server._jwt(user, access), "expires_in": server.expires_in}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = serve(Handler, self.port, self.tls)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class Registry:
    """``docker-registry serve`` on 127.0.0.1 with its own storage."""

    def __init__(
        self,
        root: Path,
        auth: str | None = None,
        users: dict[str, str] | None = None,
        *,
        token_tls: bool = True,
        realm: str | None = None,
        tls: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
    ) -> None:
        """``auth="token"``: a token server over HTTPS (``token_tls``, the default; clients
        need :meth:`client_env`) or plain HTTP on its own port; ``realm`` overrides the realm
        the registry names (e.g. a proxy serving the token path on the registry's origin).
        ``tls``: the registry itself serves HTTPS with this (certificate, key); ``client_ca``:
        and asks every client for a certificate this CA issued (mutual TLS)."""
        self.root = root
        self.port = free_port()
        self.auth = auth
        self.users = users or {}
        self.token_tls = token_tls
        self.realm = realm
        self.tls = tls
        self.client_ca = client_ca
        self.ca: LoopbackCA | None = None
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
        if self.tls is not None:
            lines += ["  tls:", f"    certificate: {self.tls[0]}", f"    key: {self.tls[1]}"]
            if self.client_ca is not None:
                lines += ["    clientcas:", f"      - {self.client_ca}"]
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
            self.ca = LoopbackCA(self.root / "ca") if self.token_tls else None
            self.token = TokenServer(self.users, tls=self.ca)
            while self.token.port == self.port:  # both ports came from free_port: never the same
                self.token.port = free_port()
            bundle = self.root / "token-ca.pem"
            bundle.write_bytes(self.token.cert_pem())
            lines += [
                "auth:", "  token:", f"    realm: {self.realm or self.token.realm}",
                f"    service: {self.token.service}", f"    issuer: {self.token.issuer}",
                f"    rootcertbundle: {bundle}",
            ]  # fmt: skip
        return "\n".join(lines) + "\n"

    def start(self) -> Registry:
        """Start the registry (and its token server); when it dies before answering, e.g.
        because another process took the port between :func:`free_port` and its bind, start
        it again on fresh ports (three tries in all)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        for _ in range(3):
            config.write_text(self._config())
            if self.token is not None:
                self.token.start()
            with open(self.root / "log", "wb") as log:  # the child keeps its own copy of the descriptor
                self.proc = subprocess.Popen(
                    ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=log
                )
            if self._answering(deadline=time.monotonic() + 30):
                return self
            self.stop()
            self.port = free_port()
        log_tail = (self.root / "log").read_text(errors="replace")[-500:]
        raise AssertionError(f"docker-registry on {self.host} exited before answering, three times: {log_tail}")

    def _answering(self, deadline: float) -> bool:
        """True once the registry answers; False as soon as its process has exited."""
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.tls is None:
                    urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # answering (401 is fine)
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"docker-registry on {self.host} did not come up within 30s")

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

    def client_env(self) -> dict[str, str]:
        """What a client needs in its environment to trust this registry's token server."""
        return self.ca.env() if self.ca else {}

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


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


_HOP_BY_HOP = ("connection", "transfer-encoding", "content-length", "keep-alive")


def forward(
    handler: http.server.BaseHTTPRequestHandler,
    upstream: str,
    body: bytes,
    headers: dict[str, str],
    *,
    relocate: str = "",
    rewrite: dict[str, str] | None = None,
) -> None:
    """Send the handler's request to ``upstream`` and its answer back; a relative Location
    of the answer becomes absolute on ``relocate``; ``rewrite`` replaces answer headers."""
    rewrite = {k.lower(): v for k, v in (rewrite or {}).items()}
    conn = http.client.HTTPConnection(upstream, timeout=60)
    send_body = body if body or handler.command in ("PUT", "POST", "PATCH") else None
    conn.request(handler.command, handler.path, body=send_body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    handler.send_response(resp.status)
    for k, v in resp.getheaders():
        value = relocate + v if relocate and k.lower() == "location" and v.startswith("/") else v
        if k.lower() not in (*_HOP_BY_HOP, *rewrite):
            handler.send_header(k, value)
    for k, v in rewrite.items():
        if k != "content-length":
            handler.send_header(k, v)
    length = (resp.getheader("Content-Length") or "0") if handler.command == "HEAD" else str(len(data))
    handler.send_header("Content-Length", rewrite.get("content-length", length))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
    conn.close()


@dataclass
class Rule:
    """A hostile answer the proxy gives instead of (or on top of) the registry's.

    ``method`` (None: any) and ``path`` (a regex searched in the request path) select the
    requests; at most ``times`` of them (None: all). Actions:

    - ``respond``: answer ``status`` with ``headers`` and ``body`` (the registry never sees it);
    - ``drop-put``: read the body, answer 201 with its digest as if stored, store nothing;
    - ``redirect``: answer 307 to ``target`` + the request's path and query;
    - ``location``: forward, then make a relative ``Location`` of the answer absolute on ``target``;
    - ``rewrite``: forward, then replace the answer's ``headers`` (hostile header values);
    - ``dribble``: send a status line and headers one byte every ``interval`` seconds, for ever;
    - ``endless``: answer 200 with a body that never ends (``framing``: ``close`` or ``chunked``);
    - ``stall``: read the request body one byte every ``interval`` seconds and never answer;
    - ``token``: forward to ``target`` (a token server URL) as the registry's own ``/token``.
    """

    action: str
    path: str = ""
    method: str | None = None
    times: int | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    target: str = ""
    interval: float = 1.0
    framing: str = "close"
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return re.search(self.path, path) is not None


class FaultProxy:
    """HTTP proxy in front of a registry: counts requests and body bytes, with a seeded RNG
    answers 500/503/429 or drops the connection half-way through a request body, and applies
    :class:`Rule` s for hostile answers. ``hostile`` counts the requests each rule took."""

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
        self.rules: list[Rule] = []
        self.hostile: Counter[str] = Counter()
        self.log: list[str] = []  # "METHOD /path?query" of every request, in order
        self.auths: list[str] = []  # every Authorization header received, in order
        self.stopping = threading.Event()
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

    def _rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    self.hostile[rule.action] += 1
                    return rule
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(QuietHandler):
            def _trickle(self, data: bytes, interval: float) -> None:
                for i in range(len(data)):
                    if proxy.stopping.wait(interval):
                        return
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()

            def _hostile(self, rule: Rule, body: bytes | None, length: int) -> bool:
                """Apply ``rule``; False when the request is to be forwarded after all."""
                if rule.action == "stall":
                    for _ in range(length):
                        if proxy.stopping.wait(rule.interval) or not self.rfile.read(1):
                            break
                    proxy.stopping.wait(3600)
                    self.close_connection = True
                    return True
                assert body is not None
                if rule.action == "respond":
                    self.send_response(rule.status)
                    for k, v in rule.headers.items():
                        self.send_header(k, v)
                    if "Content-Length" not in rule.headers:
                        self.send_header("Content-Length", str(len(rule.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(rule.body)
                elif rule.action == "drop-put":
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    self.send_response(201)
                    self.send_header("Docker-Content-Digest", digest)
                    self.send_header("Location", urllib.parse.urlsplit(self.path).path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif rule.action == "redirect":
                    self.send_response(307)
                    self.send_header("Location", rule.target + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif rule.action == "dribble":
                    self._trickle(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Slow: x\r\n" * 100, rule.interval
                    )
                    self.close_connection = True
                elif rule.action == "endless":
                    framing = "Transfer-Encoding: chunked" if rule.framing == "chunked" else "Connection: close"
                    self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode())
                    piece = b"[" * (64 << 10)
                    if rule.framing == "chunked":
                        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                    try:
                        while not proxy.stopping.is_set():
                            self.wfile.write(piece)
                    except OSError:
                        pass
                    self.close_connection = True
                elif rule.action == "token":
                    split = urllib.parse.urlsplit(rule.target)
                    conn = http.client.HTTPConnection(split.netloc, timeout=60)
                    query = urllib.parse.urlsplit(self.path).query
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                    conn.request("GET", split.path + (f"?{query}" if query else ""), headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    conn.close()
                else:
                    return False
                return True

            def _handle(self) -> None:
                if proxy.latency:
                    time.sleep(proxy.latency)
                length = int(self.headers.get("Content-Length") or 0)
                path = urllib.parse.urlsplit(self.path).path
                kind = f"{self.command} {'/'.join(path.split('/')[3:5]) if path.startswith('/v2/') else path}"
                with proxy.lock:
                    proxy.requests[kind] += 1
                    proxy.log.append(f"{self.command} {self.path}")
                    if self.headers.get("Authorization"):
                        proxy.auths.append(self.headers["Authorization"])
                rule = proxy._rule(self.command, path)
                if rule is not None and rule.action == "stall":
                    self._hostile(rule, None, length)
                    return
                fault = proxy._fault() if rule is None else None
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
                if rule is not None and self._hostile(rule, body, length):
                    return
                if fault is not None:
                    with proxy.lock:
                        proxy.faults[fault] += 1
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                relocate = rule.target if rule is not None and rule.action == "location" else ""
                rewrite = rule.headers if rule is not None and rule.action == "rewrite" else None
                forward(self, proxy.upstream, body, headers, relocate=relocate, rewrite=rewrite)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = serve(Handler, self.port)
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class CredentialLog:
    """A second origin on loopback that records the Authorization header of every request
    it receives (None when there was none). With ``upstream``, it forwards each request
    there with its own credentials (``upstream_auth(path)``, e.g. a token the test mints),
    as a storage service holding signed upload URLs would; otherwise it answers 404."""

    def __init__(
        self,
        upstream: str | None = None,
        upstream_auth: Callable[[str], str | None] | None = None,
        tls: LoopbackCA | None = None,
    ) -> None:
        self.upstream = upstream
        self.upstream_auth = upstream_auth
        self.tls = tls
        self.port = free_port()
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None]] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def authorizations(self) -> list[str]:
        with self.lock:
            return [a for _, _, a in self.seen if a is not None]

    def start(self) -> CredentialLog:
        log = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                with log.lock:
                    log.seen.append((self.command, self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if log.upstream is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "keep-alive", "authorization", "host")
                }
                auth = log.upstream_auth(self.path) if log.upstream_auth else None
                if auth:
                    headers["Authorization"] = auth
                forward(self, log.upstream, body, headers)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = serve(Handler, self.port, self.tls)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def upload_all_but(host: str, repository: str, layout: Path, layers: list[tuple[int, str]], missing: str) -> None:
    """Upload to ``repository`` at ``host`` every blob of ``layers`` ((size, digest) of the
    layout ``layout``) but ``missing``: a registry that lacks one layer of an image."""
    client = RegistryClient(host)
    try:
        for size, digest in layers:
            if digest != missing:
                client.upload_blob(repository, digest, blob_path(layout, digest), size)
    finally:
        client.close()
