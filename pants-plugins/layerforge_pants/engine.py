"""Which rules module this Pants runs: `rules_calls` (call-by-name: `await rule(x,
**implicitly())`, `concurrently`) from Pants 2.30, where `Get`/`MultiGet` are deprecated (and
from 2.32 gone); `rules_gets` (`Get`, `MultiGet`) before, where the call-by-name names of
Pants' own rules do not all exist. Both declare the same rules (tests/test_pants_rule_modules.py)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from pants.version import PANTS_SEMVER

CALL_BY_NAME = (PANTS_SEMVER.major, PANTS_SEMVER.minor) >= (2, 30)


def rules_module(name: str = "") -> ModuleType:
    """``layerforge_pants.rules_calls[.name]`` or ``layerforge_pants.rules_gets[.name]``."""
    package = "layerforge_pants.rules_calls" if CALL_BY_NAME else "layerforge_pants.rules_gets"
    return import_module(f"{package}.{name}" if name else package)
