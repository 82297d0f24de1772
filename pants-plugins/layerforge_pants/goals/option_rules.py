"""The one table of option rules: limits, defaults, choices, the size grammar, compression
levels, prefetch paths and the tag and repository grammar.

Every front checks its values here and names the value's source itself: the CLI its flag
(``--chunk-size``), the Pants backend its target and field (the plugin ships this very file,
byte for byte, as ``pants-plugins/layerforge_pants/goals/option_rules.py``, so that its wheel
stands alone; ``tests/test_option_rules.py`` keeps the two equal: edit this one, then copy it;
which is why it uses the standard library only), and the native core,
which has its own copy of the rules it needs, its setting. ``tests/vectors/option_rules.json``
holds the cases every implementation is tested against (Python and the plugin by
``tests/test_option_rules.py``, the Rust core and command by ``cargo test``).

A broken rule raises :class:`RuleError`, which carries the bad value and the rule, never a
flag or field name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

Value = Union[int, float, str]

_KIB, _MIB, _GIB = 1 << 10, 1 << 20, 1 << 30


class RuleError(ValueError):
    """``value`` breaks ``rule`` (a phrase to follow the value: "is not one of gzip, zstd")."""

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name, self.value, self.rule = name, value, rule
        super().__init__(f"{shown_value(value)} {rule}")


def shown_value(value: object) -> str:
    """The value as messages quote it: ``repr`` (control characters escaped), cut to 200."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text) - 200} more characters)"


# -- the size grammar --------------------------------------------------------------------------

#: ``0x`` and hex digits (as nydus-image takes chunk sizes), or ASCII digits and an optional
#: binary unit: ``b``, ``k``/``kb``/``kib``, ``m``..., ``g``... (any case; K means 1024).
#: Spaces around the value and before the unit are allowed; underscores and non-ASCII digits
#: are not.
_SIZE = re.compile(r"[ \t]*(?:0x([0-9a-fA-F]+)|([0-9]+)[ \t]*([kKmMgG][iI]?[bB]?|[bB])?)[ \t]*")
_UNITS = {"": 1, "b": 1, "k": _KIB, "m": _MIB, "g": _GIB}
SIZE_RULE = "is not a size like 1MiB, 65536 or 0x100000"


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from the size grammar; :class:`RuleError` for anything else."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise RuleError(name, text, SIZE_RULE)
    if m.group(1) is not None:
        return int(m.group(1), 16)
    return int(m.group(2)) * _UNITS[(m.group(3) or "")[:1].lower()]


def human_size(n: int) -> str:
    """``n`` bytes as help texts and messages show it: ``1 MiB``, ``4 KiB``, ``65537``."""
    for unit, factor in (("GiB", _GIB), ("MiB", _MIB), ("KiB", _KIB)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return str(n)


# -- kinds of rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    default: int | None = None
    why: str = ""

    def check(self, name: str, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not self.low <= value <= self.high:
            raise RuleError(name, value, f"is not a whole number from {self.low} to {self.high}{self.why}")
        return value


#: Seconds as plain decimals (``300``, ``0.5``, ``.25``): no sign, exponent, spaces or names.
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True)
class SecondsRange:
    """More than 0 and at most ``high`` seconds, as text (environment variables give it)."""

    high: float
    default: float

    def check(self, name: str, value: object) -> float:
        if not isinstance(value, str) or _SECONDS.fullmatch(value) is None or not 0 < float(value) <= self.high:
            raise RuleError(name, value, f"is not a number of seconds above 0 and at most {self.high:g}")
        return float(value)


@dataclass(frozen=True)
class Size:
    """A size in the size grammar, within bounds, a power of two if asked."""

    low: int
    high: int
    power_of_two: bool = False
    default: int | None = None

    def check(self, name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RuleError(name, value, SIZE_RULE)
        size = value if isinstance(value, int) else parse_size(value, name)
        if not self.low <= size <= self.high or (self.power_of_two and size & (size - 1)):
            kind = "a power of two" if self.power_of_two else "a size"
            raise RuleError(
                name,
                value,
                f"is not {kind} from {self.low} ({human_size(self.low)}) to {self.high} ({human_size(self.high)})",
            )
        return size


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]
    default: str | None = None

    def check(self, name: str, value: object) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise RuleError(name, value, f"is not one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Pattern:
    regex: str
    what: str

    def check(self, name: str, value: object) -> str:
        if not isinstance(value, str) or re.fullmatch(self.regex, value) is None:
            raise RuleError(name, value, f"is not {self.what}")
        return value


@dataclass(frozen=True)
class ImagePath:
    """An absolute path inside an image: no control characters, no ``..`` component."""

    default: str | None = None

    def check(self, name: str, value: object) -> str:
        if not isinstance(value, str) or not value.startswith("/"):
            raise RuleError(name, value, "is not an absolute path")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or ord(c) in (0x2028, 0x2029) for c in value):
            raise RuleError(name, value, "has control characters")
        if ".." in value.split("/"):
            raise RuleError(name, value, "contains '..'")
        return value


Rule = Union[IntRange, SecondsRange, Size, Choice, Pattern, ImagePath]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"

#: A nix image's ``--perms``/``perms`` rule: a regex, ``=``, then a mode, an owner (``:UID:GID``,
#: ids or names) or both; the look-ahead refuses a rule that gives neither (``x=``).
PERM_GRAMMAR = r"^(?P<re>.+)=(?=.)(?P<mode>[0-7]{3,4})?(?::(?P<uid>[^:=]+):(?P<gid>[^:=]+))?\Z"

#: Compression levels by layer compression: (lowest, highest, default); ``none`` takes none.
LEVELS: Mapping[str, tuple[int, int]] = {"gzip": (1, 9), "zstd": (1, 19)}
DEFAULT_LEVELS: Mapping[str, int] = {"gzip": 6, "zstd": 3}

#: The table. Names are ``area.setting``; the fronts map them to their flags and fields.
RULES: Mapping[str, Rule] = {
    # layers of every image kind
    "layer.compression": Choice(("gzip", "zstd", "none"), default="gzip"),
    "layer.threads": IntRange(0, 256, default=0, why=" (0: one per core)"),
    # nix images
    "nix.max_layers": IntRange(1, 125, default=100, why=" (Docker refuses more than 125 layers)"),
    "nix.layering": Choice(("popularity", "per-path"), default="popularity"),
    # nydus images
    "nydus.chunk_size": Size(4 * _KIB, 16 * _MIB, power_of_two=True, default=_MIB),
    "nydus.compressor": Choice(("zstd", "lz4_block", "none"), default="zstd"),
    "nydus.digester": Choice(("blake3", "sha256"), default="blake3"),
    "nydus.prefetch": ImagePath(default="/"),  # nydusify's default: the whole image
    # unikraft images
    "unikraft.initrd_compression": Choice(("none", "gzip"), default="none"),
    # registries
    "push.chunk_size": Size(64 * _KIB, 4 * _GIB),
    "push.jobs": IntRange(1, 64, default=4),
    "push.retries": IntRange(1, 100, default=8),
    "registry.timeout": SecondsRange(86400.0, default=300.0),
    "image.tag": Pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a valid tag (letters, digits, _ . -; at most 128)"),
    "image.repository": Pattern(
        rf"{_COMPONENT}(?:/{_COMPONENT})*", "a valid repository name (lowercase components joined by /)"
    ),
}


def check(name: str, value: object) -> Value:
    """``value`` as the rule ``name`` reads it (sizes in bytes), or :class:`RuleError`."""
    return RULES[name].check(name, value)


def default(name: str) -> Value:
    """The default of rule ``name`` (an error for rules without one)."""
    value: Value | None = getattr(RULES[name], "default", None)
    if value is None:
        raise KeyError(f"{name} has no default")
    return value


def choices(name: str) -> tuple[str, ...]:
    """The choices of a choice rule (for argparse and Pants' ``valid_choices``)."""
    rule = RULES[name]
    assert isinstance(rule, Choice), name
    return rule.choices


def high(name: str) -> int:
    """The upper bound of a whole-number rule (for help texts)."""
    rule = RULES[name]
    assert isinstance(rule, IntRange), name
    return rule.high


def check_level(compression: str, level: int | None) -> int | None:
    """A compression level for ``compression`` (``None``: the format's default)."""
    if level is None:
        return None
    bounds = LEVELS.get(compression)
    if bounds is None:
        raise RuleError("layer.level", level, f"is given for {compression!r} layers, which take no level")
    if not isinstance(level, int) or isinstance(level, bool) or not bounds[0] <= level <= bounds[1]:
        raise RuleError("layer.level", level, f"is not a {compression} level from {bounds[0]} to {bounds[1]}")
    return level
