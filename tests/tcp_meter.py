"""A TCP relay on 127.0.0.1 that counts the bytes each way, for tests and benchmarks: in front
of a remote cache (BuildGrid's gRPC), what a client read from it is the bytes relayed back to
it, whatever the client's own metrics say (Pants 2.17 counts bytes downloaded from its remote
store only in an observation histogram, which needs a plugin from PyPI to be shown)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.registry_support import free_port

_CHUNK = 1 << 16


class TcpMeter:
    """Relays 127.0.0.1:``port`` to ``upstream`` (``host:port``); ``down`` counts the bytes
    from upstream to clients, ``up`` the other way."""

    def __init__(self, upstream: str, connect_timeout: float = 10.0) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.connect_timeout = connect_timeout
        self.port = free_port()
        self.down = 0
        self.up = 0
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.down = self.up = 0

    def start(self) -> TcpMeter:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(timeout=5)

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=self.connect_timeout)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, upstream, client, True)
            self._spawn(self._pump, client, upstream, False)

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
                with self._lock:
                    if down:
                        self.down += len(data)
                    else:
                        self.up += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
