"""Bytes moved by several transfer threads, summed for one ``progress(done, total)`` callback."""

from __future__ import annotations

import threading

from layerforge.progress import ProgressCallback


class ByteMeter:
    """Called with each transfer's byte counts (negative to take back a failed attempt's);
    ``lock`` also serialises per-blob reports with the callback."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self.lock:
            self.done += n
            if self.callback is not None:
                self.callback(self.done, self.total)
