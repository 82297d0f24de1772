"""What a registry answers, read as hostile input: headers (``Range``, ``Content-Length``,
``Docker-Content-Digest``, ``Retry-After``) and JSON bodies (error lists, token answers).

Every reader here either returns a value of the expected shape or ``None``/raises a
:class:`~layerforge.errors.LayerforgeError` with a one-line message; none lets a
``ValueError``, ``RecursionError`` or ``AttributeError`` out. Text quoted back in messages
goes through :func:`layerforge.trust.text.shown`.
"""

from __future__ import annotations

import json
import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.registry.reference import is_digest

_DIGITS = re.compile(r"[0-9]{1,19}")
_RANGE = re.compile(r"(?:bytes=)?0-([0-9]{1,19})")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
MAX_CODES = 8
MAX_RETRY_AFTER = 60.0


def json_body(data: bytes, what: str) -> Any:
    """A JSON document from a registry or token service (already bounded in size)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise LayerforgeError(f"{what} is not valid JSON") from None


def error_codes(data: bytes) -> tuple[str, ...]:
    """The ``errors[].code`` values of a distribution-spec error body; nothing for any
    other shape. Codes are upper-case identifiers, at most :data:`MAX_CODES`."""
    try:
        doc = json.loads(data) if data else None
    except (ValueError, RecursionError):
        return ()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ()
    codes = []
    for e in errors[:MAX_CODES]:
        code = e.get("code") if isinstance(e, dict) else None
        if isinstance(code, str) and _CODE.fullmatch(code):
            codes.append(code)
    return tuple(codes)


def decimal(value: str | None) -> int | None:
    """A non-negative decimal header value (``Content-Length``); None if absent or odd."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def range_end(value: str | None) -> int | None:
    """Last byte an upload session holds, from ``Range: 0-N``; None if absent or odd."""
    if value is None:
        return None
    m = _RANGE.fullmatch(value.strip())
    return int(m.group(1)) if m else None


def content_digest(value: str | None) -> str | None:
    """``Docker-Content-Digest`` if it is a sha256 digest, else None."""
    if value is None:
        return None
    value = value.strip()
    return value if is_digest(value) else None


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delay seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None for anything else."""
    if not value:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return min(float(int(value)), MAX_RETRY_AFTER)
    if len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if not math.isfinite(when):
        return None
    return min(max(when - time.time(), 0.0), MAX_RETRY_AFTER)
