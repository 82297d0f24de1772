"""The command line's side of the option rules (:mod:`layerforge.option_rules`): a value
checked against its rule, with the error naming the flag, which the table never does."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from layerforge import option_rules
from layerforge.errors import UsageError
from layerforge.option_rules import RuleError, choices, default, high

__all__ = [
    "NATIVE_FLAGS",
    "check_threads",
    "checked",
    "checked_level",
    "choices",
    "default",
    "high",
    "int_type",
    "native_flag",
]

#: The flags of the settings the native core names by value (``_native.RuleError.setting``).
NATIVE_FLAGS = {
    "nydus.chunk_size": "--chunk-size",
    "nydus.compressor": "--compressor",
    "nydus.digester": "--digester",
    "nydus.prefetch": "--prefetch",
    "nydus.chunk_dict": "--chunk-dict",
    "layer.compression": "--compression",
    "layer.level": "--level",
}


def native_flag(setting: str) -> str:
    return NATIVE_FLAGS.get(setting, setting)


def checked(flag: str, rule: str, value: object) -> Any:
    """``value`` as ``rule`` reads it, or a :class:`UsageError` naming ``flag``."""
    try:
        return option_rules.check(rule, value)
    except RuleError as e:
        raise UsageError(flag, str(e)) from None


def check_threads(threads: int) -> int:
    return int(checked("--threads", "layer.threads", threads))


def checked_level(flag: str, compression: str, level: int | None) -> int | None:
    try:
        return option_rules.check_level(compression, level)
    except RuleError as e:
        raise UsageError(flag, str(e)) from None


def int_type(rule: str) -> Callable[[str], int]:
    """An argparse ``type`` for a whole-number rule (argparse names the flag)."""

    def parse(value: str) -> int:
        try:
            n = int(value, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option_rules.shown_value(value)} is not a whole number") from None
        try:
            return int(option_rules.check(rule, n))
        except RuleError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse
