"""HTTP for registries: keep-alive connections per thread, TLS verified by default (plain
HTTP only for ``insecure`` or loopback registries), zero-copy uploads from files, and a
bounded retry policy (exponential backoff with full jitter, ``Retry-After`` honoured).

Only one attempt happens in :meth:`Transport.send`; callers wrap whole operations in
:meth:`RetryPolicy.run`, so that an interrupted upload restarts from a fresh session.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, Union
from urllib.parse import urljoin, urlsplit

from layerforge.errors import LayerforgeError
from layerforge.registry.reference import is_loopback

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("layerforge.registry")
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SEND_CHUNK = 4 << 20


class RegistryError(LayerforgeError):
    """A failed registry operation; ``status`` and registry error ``codes`` when known."""

    def __init__(self, message: str, status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class RetryableError(RegistryError):
    """A failure worth another attempt (network error, 408/429/5xx)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FileBody:
    """Bytes ``[offset, offset+length)`` of a file, sent without copying through Python."""

    path: Path
    offset: int
    length: int


Body = Union[bytes, FileBody, None]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 10.0
    total_time: float = 600.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

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
        if attempt >= self.attempts or elapsed >= self.total_time:
            raise RegistryError(f"{what}: giving up after {attempt} attempts: {error}", error.status) from None
        backoff = self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        delay = max(backoff, min(error.retry_after or 0.0, 60.0))
        delay = min(delay, max(self.total_time - elapsed, 0.0))
        log.debug("%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, error, delay)
        self.sleep(delay)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


class Transport:
    def __init__(self, registry: str, *, insecure: bool = False, timeout: float = 120.0) -> None:
        self.registry = registry
        self.scheme = "http" if insecure or is_loopback(registry) else "https"
        self.base = f"{self.scheme}://{registry}"
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _tls(self) -> ssl.SSLContext:
        """Certificate-verifying TLS context (ssl is imported only when HTTPS is used)."""
        if self._ssl is None:
            import ssl  # noqa: PLC0415 - deferred: plain-HTTP pushes never need it

            self._ssl = ssl.create_default_context()
        return self._ssl

    def url(self, path: str) -> str:
        return urljoin(self.base + "/", path)

    def _connection(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        conns: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls())
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=1 << 20)
            conns[(scheme, netloc)] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self, netloc: str, scheme: str) -> None:
        conns = self._local.__dict__.get("conns", {})
        conn = conns.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        progress: Callable[[int], None] | None = None,
    ) -> Response:
        """One HTTP exchange. Network failures and 408/429/5xx raise :class:`RetryableError`."""
        full = self.url(url) if not url.startswith(("http://", "https://")) else url
        parts = urlsplit(full)
        if parts.scheme == "http" and self.scheme == "https":
            raise RegistryError(f"{self.registry} redirected to plain HTTP ({parts.netloc}); refusing")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        hdrs = dict(headers or {})
        length = len(body) if isinstance(body, bytes) else body.length if isinstance(body, FileBody) else 0
        if body is not None or method in ("PUT", "POST", "PATCH"):
            hdrs["Content-Length"] = str(length)
        log.debug("%s %s://%s%s", method, parts.scheme, parts.netloc, target)
        conn = self._connection(parts.netloc, parts.scheme)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            if isinstance(body, bytes) and body:
                conn.send(body)
                if progress:
                    progress(len(body))
            elif isinstance(body, FileBody):
                self._send_file(conn, body, progress)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self._drop(parts.netloc, parts.scheme)
            raise RetryableError(f"{method} {parts.path}: {type(e).__name__}: {e}") from None
        if resp.will_close:
            self._drop(parts.netloc, parts.scheme)
        if resp.status in RETRYABLE_STATUS:
            raise RetryableError(
                f"{method} {parts.path}: HTTP {resp.status}", resp.status, _retry_after(resp.getheader("Retry-After"))
            )
        return Response(resp.status, resp.headers, data)

    def _send_file(
        self, conn: http.client.HTTPConnection, body: FileBody, progress: Callable[[int], None] | None
    ) -> None:
        sock = conn.sock
        assert sock is not None
        with open(body.path, "rb") as f:
            offset, left = body.offset, body.length
            zero_copy = type(sock).__name__ != "SSLSocket"
            while left > 0:
                n = min(SEND_CHUNK, left)
                if zero_copy:
                    # socket.sendfile waits on the socket's timeout (os.sendfile would see EAGAIN)
                    sent = sock.sendfile(f, offset, n)
                    if sent == 0:
                        raise ConnectionError("connection closed during upload")
                else:
                    f.seek(offset)
                    chunk = f.read(n)
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
