"""A Unikraft ``.config`` as KraftKit stores it: every ``CONFIG_X=VALUE`` becomes one
``os.features`` item (quotes removed, sorted, host paths ``CONFIG_UK_APP``/``CONFIG_UK_BASE``
dropped), and ``CONFIG_UK_FULLVERSION`` is the image's ``os.version``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.trust.blobs import read_document
from layerforge.trust.text import has_control, shown

_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)\Z")
#: Host paths of the build machine: kraftkit leaves them out, and so do we.
SKIPPED = frozenset({"CONFIG_UK_APP", "CONFIG_UK_BASE"})
VERSION_KEY = "CONFIG_UK_FULLVERSION"
#: Largest .config read (Linux's own are ~300 KiB).
MAX_KCONFIG = 16 << 20
# Values written without quotes when a .config is given back (Kconfig's own convention).
_BARE = re.compile(r"^(?:[ynm]|-?[0-9]+|0[xX][0-9a-fA-F]+)\Z")


def parse_kconfig(path: Path, option: str = "--kconfig") -> dict[str, str]:
    """``CONFIG_X=VALUE`` lines of ``path``; blank lines and ``#`` comments (including
    ``# CONFIG_X is not set``) are skipped, anything else is refused with its line number."""
    if path.is_dir():
        raise UsageError(option, f"'{path}' is a directory, not a .config file")
    try:
        data = read_document(path, f"'{path}'", limit=MAX_KCONFIG, follow=True)
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None
    if b"\0" in data:
        raise UsageError(option, f"'{path}' is a binary file, not a .config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(option, f"cannot read '{path}': {e}") from None
    out: dict[str, str] = {}
    # Lines end at "\n" only: other separators (form feed, NEL, ...) are refused below.
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or has_control(line):
            raise UsageError(option, f"{path}:{no}: expected CONFIG_NAME=VALUE, got {shown(repr(line), 200)}")
        key, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[key] = value
    return out


def features(kconfig: Mapping[str, str], injected: Mapping[str, str]) -> tuple[str, ...]:
    """``os.features``: the kconfig plus injected entries (which win), sorted byte-wise."""
    merged = {k: v for k, v in kconfig.items() if k not in SKIPPED}
    merged.update(injected)
    return tuple(sorted(f"{k}={v}" for k, v in merged.items()))


def render_kconfig(features: Iterable[str]) -> str:
    """A ``.config`` rebuilt from ``os.features`` (strings quoted again)."""
    lines = []
    for item in features:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("CONFIG_"):
            continue
        lines.append(f"{key}={value}" if _BARE.match(value) else f'{key}="{value}"')
    return "".join(line + "\n" for line in lines)
