"""A blob streamed from a registry into a layout, verified on the way in.

The bytes go to a scratch file in the layout's tmp dir (named with our pid, so a killed pull
leaves nothing that :meth:`~layerforge.layout.oci_layout.OciLayout.clean_stale_temp` keeps),
hashed and counted as they arrive; at most the descriptor's size plus one byte is read. The
file is renamed to ``blobs/sha256/<hex>`` only when its size and digest are the descriptor's:
a blob never appears under a digest it does not have.
"""

from __future__ import annotations

import hashlib
import http.client
import os
from collections.abc import Callable
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.trust.blobs import temp_name

#: Bytes received per read: small enough that the hash and the write find them in the CPU's
#: cache (1 MiB reads cost three times the system time; see BENCHMARKS.md, pull).
_BUFFER = 128 << 10


class BlobRefused(LayerforgeError):
    """What the registry sent is not what was asked for (digest, size, media type)."""


class BlobSink:
    """A :data:`~layerforge.registry.transport.Sink` for one blob; each call is one attempt
    (a retry starts the scratch file and the progress count from zero again)."""

    def __init__(
        self, target: Path, tmp_dir: Path, *, digest: str, size: int, what: str, progress: Callable[[int], None]
    ) -> None:
        self.target, self.tmp_dir, self.digest, self.size, self.what = target, tmp_dir, digest, size, what
        self.progress = progress
        self.counted = 0  # bytes reported to progress by the attempt under way

    def __call__(self, resp: http.client.HTTPResponse) -> None:
        self.progress(-self.counted)
        self.counted = 0
        if resp.length is not None and resp.length != self.size:
            raise BlobRefused(f"{self.what}: the registry sends {resp.length} bytes, its descriptor says {self.size}")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(self.tmp_dir, self.target.name)
        try:
            total, h = self._receive(resp, tmp)
            if total != self.size:
                # A chunked answer that ended early: the connection broke (worth another try).
                raise http.client.IncompleteRead(b"", self.size - total)
            got = "sha256:" + h.hexdigest()
            if got != self.digest:
                raise BlobRefused(f"{self.what}: the registry sent bytes whose digest is {got}; refused")
            os.replace(tmp, self.target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _receive(self, resp: http.client.HTTPResponse, tmp: Path) -> tuple[int, hashlib._Hash]:
        h = hashlib.sha256()
        buf = bytearray(_BUFFER)
        view = memoryview(buf)
        total = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            while True:
                want = min(_BUFFER, self.size + 1 - total)
                n = resp.readinto(view[:want]) if want > 0 else 0
                if not n:
                    break
                total += n
                if total > self.size:
                    raise BlobRefused(f"{self.what}: the registry sends more than its descriptor's {self.size} bytes")
                piece = view[:n]
                h.update(piece)
                try:
                    while piece:
                        piece = piece[os.write(fd, piece) :]
                except OSError as e:  # the disk, not the network: not worth another attempt
                    raise LayerforgeError(f"{self.what}: cannot write '{tmp}': {e.strerror}") from None
                self.counted += n
                self.progress(n)
        finally:
            os.close(fd)
        return total, h
