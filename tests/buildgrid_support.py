"""A real BuildGrid (PyPI ``buildgrid``) REAPI cache on 127.0.0.1, for tests and benchmarks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.registry_support import free_port

# Action cache + CAS + ByteStream on disk. BuildGrid caps concurrent RPCs at its gRPC thread pool
# (5 x cores by default, 10 on a 2-core machine), below Pants' default remote-store concurrency,
# so the pool is sized explicitly.
_CONFIG = """
thread-pool-size: 256
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas
    path: {root}/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


@contextmanager
def buildgrid_server(root: Path, start_timeout: float = 30.0) -> Iterator[str]:
    """Start ``bgd`` with its storage under ``root``; yields the ``grpc://`` address."""
    bgd = Path(sys.executable).parent / "bgd"
    if not bgd.exists():
        raise RuntimeError("buildgrid is installed by scripts/test (requirements-dev.txt)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(_CONFIG.format(port=port, root=root))
    with open(root / "log", "wb") as log:
        proc = subprocess.Popen([str(bgd), "server", "start", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise RuntimeError("BuildGrid exited:\n" + (root / "log").read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("BuildGrid did not start:\n" + (root / "log").read_text())
            time.sleep(0.1)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
