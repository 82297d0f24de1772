"""Flake output references (``.#app``, ``path:sub#app``, ``.#packages.x86_64-linux.app``).

A flake is evaluated with its lock file, which is used and never rewritten
(``--no-update-lock-file``): a lock that no longer matches ``flake.nix`` is an error, not an
update. Local flakes are read as ``path:`` directories (every file in them, as Pants hands
them to a process), never through git, so that the same files give the same derivations
wherever they are checked out.
"""

from __future__ import annotations

import os
from pathlib import Path

from layerforge.errors import UsageError
from layerforge.trust.text import has_control

#: Nix 2.x keeps flakes behind experimental features; switched on for every flake command.
FLAKE_FEATURES = ("--extra-experimental-features", "nix-command flakes")
#: Never write or update the lock file: evaluation is pinned by it.
LOCKED = ("--no-update-lock-file",)
#: Applied to a flake output: its derivation and the output `nix build` would build, as DRV!OUT.
TO_DERIVATION = (
    'd: if (d.type or null) == "derivation" then d.drvPath + "!" + d.outputName '
    'else throw "layerforge: the flake output is not a derivation"'
)


def installable(ref: str, cwd: Path, option: str = "--flake") -> str:
    """``ref`` as Nix should read it: a local flake (``.``, ``./sub``, ``/abs``, ``path:sub``,
    each with an optional ``#fragment``) as ``path:/abs/dir#fragment``; any other reference
    (``github:...``, a registry name) unchanged."""
    if not ref or ref.startswith("-") or has_control(ref) or any(c.isspace() for c in ref):
        raise UsageError(option, f"{ref!r} is not a flake reference (like .#app or path:sub#app)")
    where, sep, fragment = ref.partition("#")
    local = where.removeprefix("path:")
    if where.startswith("path:") or where == "" or local.startswith((".", "/")):
        directory = Path(os.path.normpath(cwd / (local or ".")))
        if not (directory / "flake.nix").is_file():
            raise UsageError(option, f"{ref!r}: '{directory}' has no flake.nix")
        return f"path:{directory}{sep}{fragment}"
    return ref
