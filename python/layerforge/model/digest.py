"""``sha256:<hex>`` digests."""

from __future__ import annotations

import hashlib
import re

from layerforge.errors import LayerforgeError
from layerforge.trust.text import shown

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate_digest(value: object, what: str = "digest") -> str:
    """Return ``value`` if it is a sha256 digest, else raise naming ``what``."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise LayerforgeError(f"{what} {shown(repr(value), 100)} is not a sha256 digest")
    return value


def digest_hex(value: str) -> str:
    return validate_digest(value)[len("sha256:") :]
