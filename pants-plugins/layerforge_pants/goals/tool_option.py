"""Fields that know their layerforge option: each renders its own arguments, every value as
one ``--flag=value`` (see :func:`layerforge_pants.goals.package.option`), so an argv builder
iterates its fields and an error about an option names the field it came from."""

from __future__ import annotations

import json
from typing import ClassVar

from pants.engine.target import Field


def option(flag: str, value: object) -> str:
    """``--flag=value``: the one form in which a field's value reaches a layerforge argv. It is
    one argument, so argparse reads it as ``flag``'s value whatever it starts with (a value
    ``--out`` passed as ``--flag --out`` could be read as an option of its own); positionals
    go after ``--``."""
    return f"{flag}={value}"


class ToolOptionField(Field):
    """A field that sets the option ``flag`` of a layerforge command."""

    #: The option this field sets.
    flag: ClassVar[str]

    def option_values(self) -> tuple[object, ...]:
        """The option's values, one argument each: a sequence's items, a single value, or
        nothing when the field is unset (or an empty string)."""
        value = self.value
        if value is None or value == "":
            return ()
        if isinstance(value, (tuple, list)):
            return tuple(value)
        return (value,)

    def argv(self) -> list[str]:
        return [option(self.flag, v) for v in self.option_values()]


class ToolFlagField(ToolOptionField):
    """A boolean field that sets the switch ``flag`` (no value) when true."""

    def argv(self) -> list[str]:
        return [self.flag] if self.value else []


class ToolJsonOptionField(ToolOptionField):
    """A sequence field given as one JSON array (``--entrypoint='["/bin/app", "-v"]'``)."""

    def option_values(self) -> tuple[object, ...]:
        return () if self.value is None else (json.dumps(list(self.value)),)


class ToolMappingOptionField(ToolOptionField):
    """A mapping field given as ``KEY=VALUE`` arguments, sorted (a stable argv)."""

    def option_values(self) -> tuple[object, ...]:
        return tuple(f"{k}={v}" for k, v in sorted((self.value or {}).items()))


def fields_argv(*fields: Field) -> list[str]:
    """The arguments of every :class:`ToolOptionField` among ``fields``, in order."""
    return [arg for f in fields if isinstance(f, ToolOptionField) for arg in f.argv()]


def option_fields(*fields: Field) -> dict[str, str]:
    """Each option -> the field it comes from (for errors about the option)."""
    return {f.flag: f.alias for f in fields if isinstance(f, ToolOptionField)}
