"""Field values checked against the option rules (``option_rules.py``, the tool's own table,
linked into the plugin), with errors that name the target and the field."""

from __future__ import annotations

from typing import Any, Optional

from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

from layerforge_pants.goals import option_rules
from layerforge_pants.goals.option_rules import RuleError, choices, high

__all__ = ["checked", "checked_level", "choices", "default_of", "high"]


def _error(alias: str, address: Address, e: RuleError) -> InvalidFieldException:
    return InvalidFieldException(f"The `{alias}` field of {address}: {e}.")


def checked(alias: str, address: Address, rule: str, value: Any) -> Any:
    """``value`` as ``rule`` reads it, or an error naming ``address`` and the field ``alias``."""
    try:
        return option_rules.check(rule, value)
    except RuleError as e:
        raise _error(alias, address, e) from None


def checked_level(alias: str, address: Address, compression: str, level: Optional[int]) -> Optional[int]:
    try:
        return option_rules.check_level(compression, level)
    except RuleError as e:
        raise _error(alias, address, e) from None


def default_of(rule: str) -> Any:
    return option_rules.default(rule)
