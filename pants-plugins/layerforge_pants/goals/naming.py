"""Repository and tag names of an image target: ``{name}``, ``{directory}``,
``{parent_directory}`` and ``{build_args.NAME}`` interpolation, with errors that name the
target and the field."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any

from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

from layerforge_pants.goals.field_rules import checked


class _Namespace:
    def __init__(self, values: Mapping[str, str], what: str) -> None:
        self._values, self._what = values, what

    def __getattr__(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"{self._what}.{name}") from None


def build_args(entries: tuple[str, ...], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    out = {}
    for e in entries:
        name, sep, value = e.partition("=")
        if sep:
            out[name] = value
        elif name in env:
            out[name] = env[name]
    return out


def interpolate(template: str, address: Address, field: str, args: Mapping[str, str]) -> str:
    directory = os.path.basename(address.spec_path) or address.target_name
    context: dict[str, Any] = {
        "name": address.target_name,
        "directory": directory,
        "parent_directory": os.path.basename(os.path.dirname(address.spec_path)),
        "build_args": _Namespace(args, "build_args"),
    }
    try:
        return string.Formatter().vformat(template, (), context)
    except KeyError as e:
        raise InvalidFieldException(
            f"The `{field}` field of {address} uses {{{e.args[0]}}} in {template!r}, which has no value "
            "(set it in [layerforge].build_args)."
        ) from None
    except (ValueError, AttributeError, IndexError) as e:
        raise InvalidFieldException(
            f"The `{field}` field of {address} has an invalid template {template!r}: {e}"
        ) from None


def image_tags(values: tuple[str, ...], address: Address, args: Mapping[str, str]) -> tuple[str, ...]:
    tags = tuple(dict.fromkeys(interpolate(v, address, "image_tags", args) for v in values))
    if not tags:
        raise InvalidFieldException(f"The `image_tags` field of {address} is empty.")
    for t in tags:
        checked("image_tags", address, "image.tag", t)
    return tags


def repository(value: str, address: Address, args: Mapping[str, str]) -> str:
    return str(checked("repository", address, "image.repository", interpolate(value, address, "repository", args)))
