"""Build time from SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

from layerforge.errors import LayerforgeError
from layerforge.trust.text import shown

#: Used when SOURCE_DATE_EPOCH is unset: 1970-01-01T00:00:01Z, as nixpkgs and nix2container do.
DEFAULT_EPOCH = 1
#: 9999-12-31T23:59:59Z: the last second RFC 3339 (``created``) can write, which tar carries too.
MAX_EPOCH = 253402300799


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_EPOCH
    if not raw.isascii() or not raw.isdigit():
        raise LayerforgeError(f"SOURCE_DATE_EPOCH: {shown(repr(raw), 100)} is not a non-negative integer of seconds")
    if len(raw) > 20 or int(raw) > MAX_EPOCH:
        raise LayerforgeError(
            f"SOURCE_DATE_EPOCH: {shown(raw, 40)} is later than {MAX_EPOCH} (9999-12-31T23:59:59Z), "
            "the last time an image can record"
        )
    return int(raw)


def rfc3339(epoch: int) -> str:
    """``2023-01-02T03:04:05Z`` for an epoch in seconds (UTC, no fraction)."""
    dt = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
