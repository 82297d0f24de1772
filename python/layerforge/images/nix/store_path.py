"""Nix store path names: validation and ``name``/``version`` parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerforge.errors import LayerforgeError

STORE_DIR = "/nix/store"
# Nix's base-32 alphabet omits e, o, u and t.
HASH_PATTERN = r"[0-9a-df-np-sv-z]{32}"
#: Characters Nix allows in store path names (and output names).
NAME_PATTERN = r"[A-Za-z0-9+\-._?=]+"
_STORE_PATH = re.compile(rf"^{STORE_DIR}/({HASH_PATTERN})-({NAME_PATTERN})\Z")


@dataclass(frozen=True)
class StorePathName:
    path: str
    hash: str
    name: str

    @property
    def pname(self) -> str:
        return split_name(self.name)[0]

    @property
    def version(self) -> str:
        return split_name(self.name)[1]


def parse_store_path(value: str, option: str = "--store-path") -> StorePathName:
    """A top-level store path (``/nix/store/<hash>-<name>``), or an error naming the option."""
    path = value.rstrip("/") if value != "/" else value
    m = _STORE_PATH.match(path)
    if m:
        return StorePathName(path=path, hash=m.group(1), name=m.group(2))
    inner = re.match(rf"^({STORE_DIR}/{HASH_PATTERN}-{NAME_PATTERN})/", path)
    if inner:
        raise LayerforgeError(f"{option}: {value!r} is inside a store path; give the store path {inner.group(1)!r}")
    raise LayerforgeError(f"{option}: {value!r} is not a Nix store path (/nix/store/<hash>-<name>)")


def split_name(name: str) -> tuple[str, str]:
    """Nix's ``builtins.parseDrvName``: the version starts at the first ``-`` followed by a
    character that is not a letter (``hello-2.12.1`` -> ``hello``, ``2.12.1``)."""
    for i, c in enumerate(name):
        if c == "-" and i + 1 < len(name) and not name[i + 1].isalpha():
            return name[:i], name[i + 1 :]
    return name, ""
