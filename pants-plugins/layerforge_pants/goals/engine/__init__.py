"""The engine adapter: every awaitable the backend's rules use, defined once for each Pants
engine API, and the only place the two differ. Pants 2.17-2.29 run `gets.py` (`Get`,
`MultiGet`); Pants 2.30+ run `calls.py` (call-by-name: `await rule(x, **implicitly())`,
`concurrently`; `Get` is deprecated in 2.30 and gone from 2.32). The rule modules (`*/rules.py`,
`goals/*_rules.py`) are written once over these helpers (`await engine.execute(process)`) and
hold no version branch; Pants follows a rule into the helpers it awaits and reads their
`Get`s (2.17) or rule calls (2.30+) as the rule's own. tests/test_pants_rule_modules.py keeps
the two halves declaring the same helpers with the same signatures."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from pants.version import PANTS_SEMVER

CALL_BY_NAME = (PANTS_SEMVER.major, PANTS_SEMVER.minor) >= (2, 30)
_HALF: ModuleType = import_module(f"layerforge_pants.goals.engine.{'calls' if CALL_BY_NAME else 'gets'}")


def __getattr__(name: str) -> object:
    """``engine.execute`` and the rest: the helper of this Pants's half."""
    return getattr(_HALF, name)
