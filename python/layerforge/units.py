"""Human-friendly sizes on the command line (``4MiB``, ``1M``, ``65536``)."""

from __future__ import annotations

import re

from layerforge.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: str, option: str) -> int:
    """Bytes from ``N``, ``NK``/``NKiB``, ``NM``/``NMiB``, ``NG``/``NGiB`` (binary units)."""
    m = _SIZE.match(value)
    if not m:
        raise UsageError(option, f"{value!r} is not a size like 4MiB or 65536")
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * _FACTORS[unit]
