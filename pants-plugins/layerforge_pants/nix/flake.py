"""Flake output references in BUILD files (`.#app`, `path:sub#attr`, `.#packages.x86_64-linux.app`):
a flake directory relative to the BUILD file's directory, at or below it, and an optional
attribute path. In a process sandbox the directory is read as a `path:` flake (the files Pants
put there, never git), with its lock file, which is used and never rewritten."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

# Printable, no whitespace: an attribute path such as packages.x86_64-linux.app or "a.b".c.
_FRAGMENT = re.compile(r"^[!-~]*\Z")

#: Nix 2.x keeps flakes behind experimental features; switched on for every flake command.
FLAKE_FEATURES = ("--extra-experimental-features", "nix-command flakes")
#: The flake output as DRV!OUT: its derivation and the output `nix build` would build.
TO_DERIVATION = (
    'd: if (d.type or null) == "derivation" then d.drvPath + "!" + d.outputName '
    'else throw "layerforge: the flake output is not a derivation"'
)


@dataclass(frozen=True)
class FlakeRef:
    directory: str  # from the build root, normalised ("." for the root)
    fragment: str | None

    def installable(self) -> str:
        """The reference as `nix eval` reads it in a sandbox holding the flake's files."""
        where = "path:." if self.directory == "." else f"path:./{self.directory}"
        return where if self.fragment is None else f"{where}#{self.fragment}"


def parse_flake_ref(value: str, address: Address, field: str) -> FlakeRef:
    """``value`` from the field ``field`` of ``address``, or an error naming both."""
    where, sep, fragment = value.partition("#")
    local = where.removeprefix("path:")
    problem = None
    if ":" in local or "?" in local:
        problem = "only local flakes are supported: a directory (`.`, `sub`, `path:sub`) with an optional `#attr`"
    elif local.startswith("/"):
        problem = "the flake directory must be relative to the BUILD file's directory"
    elif not _FRAGMENT.match(fragment) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in local):
        problem = "it holds whitespace or control characters"
    directory = os.path.normpath(os.path.join(address.spec_path, local or "."))
    if problem is None and os.path.normpath(local or ".").split(os.sep)[0] == "..":
        problem = "the flake directory must be the BUILD file's directory or below it"
    if problem is not None:
        raise InvalidFieldException(f"The `{field}` field of {address} has {value!r}: {problem}.")
    return FlakeRef(directory, fragment if sep else None)
