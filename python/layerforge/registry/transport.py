"""HTTP transport for registry requests: keep-alive connections per worker thread, TLS
verified by default (plain HTTP only for ``insecure`` or loopback registries), zero-copy
uploads from files, a total deadline per exchange, bounded response bodies, and a bounded
retry policy (exponential backoff with full jitter, ``Retry-After`` honoured).

Only one attempt happens in :meth:`Transport.send`; callers wrap whole operations in
:meth:`RetryPolicy.run`, so that an interrupted upload restarts from a fresh session.
Redirects of GET and HEAD are followed by :meth:`Transport.fetch`, which drops the
``Authorization`` header on the way to any other origin than the one it belongs to.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, TypeVar, Union

from layerforge.errors import LayerforgeError
from layerforge.option_flags import checked
from layerforge.option_rules import default
from layerforge.registry import answers, tls
from layerforge.registry.deadline import Watchdog
from layerforge.registry.errors import RegistryError
from layerforge.trust.origins import Origin, OriginError, Url, is_loopback, parse_url, registry_origin, resolve
from layerforge.trust.text import shown

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("layerforge.registry")
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
SEND_CHUNK = 4 << 20

#: Response bodies read at most: manifests (as registries cap them), token answers, and
#: everything else (error bodies, upload answers).
MANIFEST_LIMIT = 4 << 20
TOKEN_LIMIT = 256 << 10
ERROR_LIMIT = 64 << 10
#: Seconds an exchange may take in all (connect, send, answer, body): the timeout for every
#: started :data:`UPLOAD_UNIT` of request body.
DEFAULT_TIMEOUT = float(default("registry.timeout"))
UPLOAD_UNIT = 16 << 20
TIMEOUT_ENV = "LAYERFORGE_REGISTRY_TIMEOUT"


def request_timeout(environ: Mapping[str, str]) -> float:
    """The exchange timeout :data:`TIMEOUT_ENV` sets (checked as the option rules say), else
    :data:`DEFAULT_TIMEOUT`."""
    value = environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT
    return float(checked(TIMEOUT_ENV, "registry.timeout", value))


class RetryableError(RegistryError):
    """A failure worth another attempt (network error, 408/429/5xx)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Aborted(RegistryError):
    """The push was interrupted: no further request is made."""


@dataclass(frozen=True)
class FileBody:
    """Bytes ``[offset, offset+length)`` of an open regular file, sent without copying
    through Python."""

    file: BinaryIO
    offset: int
    length: int


Body = Union[bytes, FileBody, None]
#: Reads the body of a 200 answer to a GET itself (a blob streamed to disk, see
#: :mod:`layerforge.registry.blob_sink`); it may raise :class:`LayerforgeError` to refuse it.
Sink = Callable[[http.client.HTTPResponse], None]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: Url  # what was asked (relative Location values resolve against it)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class _Exchange:
    """One request as :meth:`Transport.send` hands it to the socket: what to send, where the
    answer goes, and the deadline that bounds both."""

    method: str
    target: Url
    headers: Mapping[str, str]
    body: Body
    progress: Callable[[int], None] | None
    sink: Sink | None
    limit: int
    deadline: float
    budget: float
    what: str


@dataclass
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 10.0
    total_time: float = 600.0
    rng: random.Random = field(default_factory=random.Random)
    cancel: threading.Event = field(default_factory=threading.Event)

    def run(self, what: str, op: Callable[[], T]) -> T:
        """Run ``op`` until it succeeds, fails for good, or the attempts/time are used up."""
        start = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            try:
                return op()
            except RetryableError as e:
                self.pause(what, attempt, e, start)
        raise AssertionError("unreachable")

    def pause(self, what: str, attempt: int, error: RetryableError, start: float) -> None:
        """Back off after failed ``attempt``, or give up (raising) when the budget is spent."""
        elapsed = time.monotonic() - start
        if self.cancel.is_set():
            raise Aborted(f"{what}: interrupted") from None
        if attempt >= self.attempts or elapsed >= self.total_time:
            raise RegistryError(f"{what}: giving up after {attempt} attempts: {error}", error.status) from None
        backoff = self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        delay = max(backoff, error.retry_after or 0.0)
        delay = min(delay, max(self.total_time - elapsed, 0.0))
        log.debug("%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, error, delay)
        if self.cancel.wait(delay):
            raise Aborted(f"{what}: interrupted") from None


class _TooLarge(Exception):
    pass


def _read_body(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, if it is at most ``limit`` bytes."""
    if resp.length is not None:
        if resp.length > limit:
            raise _TooLarge()
        return resp.read()
    chunks: list[bytes] = []
    total = 0
    while True:
        piece = resp.read(min(64 << 10, limit + 1 - total))
        if not piece:
            return b"".join(chunks)
        chunks.append(piece)
        total += len(piece)
        if total > limit:
            raise _TooLarge()


def _limit_text(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


class Transport:
    def __init__(
        self, registry: str, *, insecure: bool = False, verify: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """``insecure``: plain HTTP; ``verify`` False: HTTPS without checking the registry's
        certificate (an ``insecure`` registry of registries.conf that speaks TLS)."""
        self.registry = registry
        self.verify = verify
        self.scheme = "http" if insecure or is_loopback(registry) else "https"
        self.origin: Origin = registry_origin(registry, self.scheme)
        self.base = parse_url(f"{self.scheme}://{registry}/", "registry")
        self.timeout = timeout
        self.watchdog = Watchdog()
        self._ssl: dict[str, ssl.SSLContext] = {}
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _tls(self, netloc: str) -> ssl.SSLContext:
        """The certificate-verifying TLS context of ``netloc`` (its certs.d trust, see
        :mod:`layerforge.registry.tls`); ssl is imported only when HTTPS is used."""
        with self._lock:
            ctx = self._ssl.get(netloc)
            if ctx is None:
                ctx = self._ssl[netloc] = tls.context_for(netloc, verify=self.verify or netloc != self.registry)
        return ctx

    def url(self, path_or_url: str | Url, base: Url | None = None, what: str = "URL") -> Url:
        """A checked absolute URL: ``path_or_url`` resolved against ``base`` (default: the
        registry). Hostile values raise :class:`RegistryError`."""
        if isinstance(path_or_url, Url):
            return path_or_url
        try:
            return resolve(base or self.base, path_or_url, f"{self.registry}: {what}")
        except OriginError as e:
            raise RegistryError(str(e)) from None

    def abort(self) -> None:
        """Interrupt every exchange under way and refuse new ones (the push is stopping)."""
        self.watchdog.abort()

    def _connection(self, url: Url) -> http.client.HTTPConnection:
        conns: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        key = (url.origin.scheme, url.netloc)
        conn = conns.get(key)
        if conn is None:
            cls = http.client.HTTPSConnection if url.origin.scheme == "https" else http.client.HTTPConnection
            conn = cls(url.netloc, timeout=self.timeout, blocksize=1 << 20)
            conns[key] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self, url: Url) -> None:
        conns = self._local.__dict__.get("conns", {})
        conn = conns.pop((url.origin.scheme, url.netloc), None)
        if conn is not None:
            conn.close()

    def _connect(self, conn: http.client.HTTPConnection, deadline: float) -> socket.socket:
        wait = max(min(self.timeout, deadline - time.monotonic()), 0.001)
        raw = socket.create_connection((conn.host, conn.port), timeout=wait)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(self.timeout)
        return raw

    def _tls_wrap(self, netloc: str, conn: http.client.HTTPConnection, raw: socket.socket) -> socket.socket:
        try:
            return self._tls(netloc).wrap_socket(raw, server_hostname=conn.host)
        except BaseException:
            raw.close()
            raise

    def send(
        self,
        method: str,
        url: str | Url,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        progress: Callable[[int], None] | None = None,
        *,
        limit: int = ERROR_LIMIT,
        sink: Sink | None = None,
        expect: int = 0,
    ) -> Response:
        """One HTTP exchange within a total deadline. Network failures, an exceeded deadline
        and 408/429/5xx raise :class:`RetryableError`; a body over ``limit`` bytes, a
        plain-HTTP URL for an HTTPS registry and hostile URLs raise :class:`RegistryError`.
        With ``sink``, the body of a 200 answer goes to it instead (the answer's ``body`` is
        empty), and ``expect`` bytes of it extend the deadline as a request body does."""
        target = self.url(url)
        if self.watchdog.aborted.is_set():
            raise Aborted(f"{self.registry}: interrupted")
        if target.origin.scheme == "http" and self.scheme == "https":
            raise RegistryError(f"{self.registry} sent a plain-HTTP URL ({target.origin}); refusing")
        hdrs = dict(headers or {})
        length = len(body) if isinstance(body, bytes) else body.length if isinstance(body, FileBody) else 0
        if body is not None or method in ("PUT", "POST", "PATCH"):
            hdrs["Content-Length"] = str(length)
        log.debug("%s %s", method, shown(f"{target.origin.scheme}://{target.netloc}{target.target}"))
        budget = self.timeout * (1 + max(length, expect) // UPLOAD_UNIT)
        deadline = time.monotonic() + budget
        what = f"{method} {shown(target.path, limit=200)}"
        exchange = _Exchange(method, target, hdrs, body, progress, sink, limit, deadline, budget, what)
        resp, data = self._exchange(exchange)
        if resp.will_close:
            self._drop(target)
        if target.origin.scheme == "http" and tls.is_plain_on_tls(resp, data):
            raise tls.plain_http_to_tls(self.registry)
        if resp.status in RETRYABLE_STATUS:
            raise RetryableError(
                f"{what}: HTTP {resp.status}", resp.status, answers.retry_after(resp.getheader("Retry-After"))
            )
        return Response(resp.status, resp.headers, data, target)

    def _exchange(self, x: _Exchange) -> tuple[http.client.HTTPResponse, bytes]:
        """Send ``x`` on this thread's connection to its origin and read the answer, the
        socket watched against the deadline from the moment it exists."""
        conn = self._connection(x.target)
        alarm = None
        try:
            # The socket is watched from the moment it exists: a TLS handshake that dribbles
            # is cut off at the deadline too (the alarm's descriptor outlives the wrapping).
            fresh = conn.sock is None
            sock = self._connect(conn, x.deadline) if fresh else conn.sock
            alarm = self.watchdog.arm(sock, x.deadline)
            if alarm is None:
                sock.close()
                raise Aborted(f"{self.registry}: interrupted")
            if fresh:
                sock = self._tls_wrap(x.target.netloc, conn, sock) if x.target.origin.scheme == "https" else sock
                conn.sock = sock
            self._request(conn, sock, x)
            resp = conn.getresponse()
            if x.sink is not None and resp.status == 200 and x.method == "GET":
                x.sink(resp)
                data = b""
            else:
                data = _read_body(resp, x.limit)  # HEAD: http.client knows there is no body
        except LayerforgeError:
            self.watchdog.disarm(alarm)
            alarm = None
            self._drop(x.target)  # the sink refused the body part-way: the connection is unusable
            raise
        except (_TooLarge, OSError, http.client.HTTPException, ValueError) as e:
            expired = self.watchdog.disarm(alarm)
            alarm = None
            self._drop(x.target)
            raise self._failure(e, x, expired) from None
        finally:
            if self.watchdog.disarm(alarm):
                self._drop(x.target)  # the answer was complete, but the socket was shut down
        return resp, data

    def _request(self, conn: http.client.HTTPConnection, sock: socket.socket, x: _Exchange) -> None:
        conn.putrequest(x.method, x.target.target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", x.target.netloc)
        for k, v in x.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if isinstance(x.body, bytes) and x.body:
            conn.send(x.body)
            if x.progress:
                x.progress(len(x.body))
        elif isinstance(x.body, FileBody):
            self._send_file(sock, x.body, x.progress)

    def _failure(self, e: BaseException, x: _Exchange, expired: bool) -> LayerforgeError:
        """The error an exchange that failed with ``e`` raises."""
        if isinstance(e, _TooLarge):
            return RegistryError(
                f"{self.registry}: {x.what}: the answer is larger than {_limit_text(x.limit)}; refusing it"
            )
        if self.watchdog.aborted.is_set():
            return Aborted(f"{self.registry}: interrupted")
        if expired:
            return RetryableError(
                f"{x.what}: no complete answer within {x.budget:g} s (the deadline; {TIMEOUT_ENV} sets it)"
            )
        refused = self._tls_failure(e, x.target)
        if refused is not None:
            return refused
        if isinstance(e, TimeoutError):
            return RetryableError(f"{x.what}: no progress within {self.timeout:g} s ({TIMEOUT_ENV} sets it)")
        return RetryableError(f"{x.what}: {type(e).__name__}: {shown(e, limit=200)}")

    def _tls_failure(self, e: BaseException, target: Url) -> LayerforgeError | None:
        """The error of a TLS failure no further attempt would change (None for others)."""
        if target.origin.scheme == "http":
            return tls.plain_http_to_tls(self.registry) if tls.is_tls_record(e) else None
        import ssl  # noqa: PLC0415 - loaded already: this was an HTTPS exchange

        if isinstance(e, ssl.SSLCertVerificationError):
            return tls.untrusted(target.netloc, e)
        if isinstance(e, ssl.SSLError):
            if e.reason == "WRONG_VERSION_NUMBER":
                return tls.TlsError(
                    f"{target.netloc} does not answer with TLS (HTTPS); if it is a plain-HTTP registry, use --insecure"
                )
            return tls.client_certificate_refused(target.netloc, e)
        return None

    def fetch(
        self,
        method: str,
        url: str | Url,
        headers: Mapping[str, str] | None = None,
        *,
        owner: Origin,
        limit: int = ERROR_LIMIT,
        sink: Sink | None = None,
        expect: int = 0,
    ) -> Response:
        """:meth:`send`, following redirects of GET and HEAD (at most :data:`MAX_REDIRECTS`).
        ``headers`` may hold ``Authorization`` for ``owner``; it goes to no other origin."""
        target = self.url(url)
        hdrs = dict(headers or {})
        if target.origin != owner:
            hdrs.pop("Authorization", None)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self.send(method, target, hdrs, limit=limit, sink=sink, expect=expect)
            location = resp.header("Location")
            if resp.status not in REDIRECT_STATUS or location is None or method not in ("GET", "HEAD"):
                return resp
            target = self.url(location, resp.url, "redirect")
            if target.origin != owner:
                hdrs.pop("Authorization", None)
            log.debug("redirected to %s", target.origin)
        raise RegistryError(f"{self.registry}: {method} {shown(url)}: more than {MAX_REDIRECTS} redirects")

    def _send_file(self, sock: socket.socket, body: FileBody, progress: Callable[[int], None] | None) -> None:
        f = body.file
        offset, left = body.offset, body.length
        zero_copy = type(sock).__name__ != "SSLSocket"
        while left > 0:
            n = min(SEND_CHUNK, left)
            if zero_copy:
                # socket.sendfile waits on the socket's timeout (os.sendfile would see EAGAIN)
                sent = sock.sendfile(f, offset, n)
                if sent == 0:
                    raise ConnectionError("the blob file ended early or the connection closed during upload")
            else:
                f.seek(offset)
                chunk = f.read(n)
                if not chunk:
                    raise ConnectionError("the blob file ended early")
                sock.sendall(chunk)
                sent = len(chunk)
            offset += sent
            left -= sent
            if progress:
                progress(sent)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def iter_ranges(total: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` pieces of a blob for chunked uploads."""
    offset = 0
    while offset < total:
        n = min(chunk, total - offset)
        yield offset, n
        offset += n
    if total == 0:
        yield 0, 0
