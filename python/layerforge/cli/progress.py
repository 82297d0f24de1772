"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f}"


class ProgressBar:
    """Callable as ``bar(done, total)`` (the native progress signature)."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return  # nothing to measure: no bar (a 0/0 bar would only say 100%)
        width = max(20, shutil.get_terminal_size((80, 20)).columns)
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = done / elapsed
        frac = min(done / total, 1.0) if total else 1.0
        eta = f" ETA {int((total - done) / rate)}s" if rate > 0 and done < total else ""
        text = f" {frac * 100:5.1f}% {_mib(done)}/{_mib(total)} MiB {_mib(int(rate))} MiB/s{eta}"
        bar_width = max(10, width - len(self.label) - len(text) - 4)
        filled = int(bar_width * frac)
        line = f"{self.label} [{'#' * filled}{'.' * (bar_width - filled)}]{text}"
        self.stream.write("\r" + line[: width - 1])
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
