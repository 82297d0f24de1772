"""The progress callback type shared by every long operation: ``callback(done, total)``."""

from __future__ import annotations

from typing import Callable

ProgressCallback = Callable[[int, int], object]
