"""Build time from SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

from layerforge.errors import LayerforgeError

#: Used when SOURCE_DATE_EPOCH is unset: 1970-01-01T00:00:01Z, as nixpkgs and nix2container do.
DEFAULT_EPOCH = 1


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_EPOCH
    if not raw.isdigit():
        raise LayerforgeError(f"SOURCE_DATE_EPOCH: {raw!r} is not a non-negative integer of seconds")
    return int(raw)


def rfc3339(epoch: int) -> str:
    """``2023-01-02T03:04:05Z`` for an epoch in seconds (UTC, no fraction)."""
    dt = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
