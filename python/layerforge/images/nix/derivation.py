"""Derivation outputs, ``/nix/store/<hash>-<name>.drv!out``: what Nix evaluation hands to a build.

A derivation path fixes its outputs' store paths, so a build keyed by it is keyed by
everything Nix read to produce it (channels, imported files, flake inputs).
``nix-instantiate`` prints ``DRV`` for the ``out`` output and ``DRV!NAME`` for any other;
here the output is always explicit, so that ``nix-store --realise`` builds the output that
``nix-build`` would, never every output of the derivation.
"""

from __future__ import annotations

import re

from layerforge.errors import UsageError
from layerforge.images.nix.store_path import HASH_PATTERN, NAME_PATTERN, STORE_DIR

_OUTPUTS = rf"{NAME_PATTERN}(?:,{NAME_PATTERN})*"
_DERIVATION = re.compile(rf"^({STORE_DIR}/{HASH_PATTERN}-{NAME_PATTERN}\.drv)(?:!({_OUTPUTS}))?\Z")


def parse_derivation(value: str, option: str = "--derivation") -> str:
    """``DRV[!OUT[,OUT...]]`` as ``DRV!OUT[,OUT...]`` (``out`` when none is named), or a usage
    error naming the option."""
    m = _DERIVATION.match(value)
    if not m:
        raise UsageError(option, f"{value!r} is not a derivation output (/nix/store/<hash>-<name>.drv[!OUTPUT])")
    return f"{m.group(1)}!{m.group(2) or 'out'}"
