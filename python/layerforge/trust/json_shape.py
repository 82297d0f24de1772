"""JSON documents from input (index.json, manifests, configs): parsed with bounds, and read
field by field with strict types, so that a wrong type is one error naming the document and
the field (``'...': manifest sha256:...: 'layers[0].annotations' must be an object of
strings, got a list``) instead of a traceback deep inside the code that used it.

Rules: integers only (OCI documents hold no floats, and canonical JSON cannot encode them),
nesting at most :data:`MAX_DEPTH` deep, sizes within int64; strings that end up in configs,
platforms or messages as one line (``os.features``, ``Env``, ``User``, ...) hold no control
characters.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from layerforge.errors import LayerforgeError
from layerforge.trust.text import has_control, shown

#: Deepest nesting of arrays and objects accepted (OCI documents need about 5).
MAX_DEPTH = 32
#: Largest size or count a document may state (Go's int64, what registries and tar carry).
MAX_INT = (1 << 63) - 1


class ShapeError(LayerforgeError):
    """A document whose structure or field types are not what the format says."""


def _no_float(text: str) -> NoReturn:
    raise ValueError(f"number {text[:40]} is not an integer (OCI documents hold integers only)")


def load_json(data: bytes, where: str) -> Any:
    """Parse a document; invalid JSON, floats, NaN and nesting beyond :data:`MAX_DEPTH`
    are errors naming ``where``."""
    try:
        obj = json.loads(data, parse_float=_no_float, parse_constant=_no_float)
    except RecursionError:
        raise ShapeError(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, our float refusal, int digits
        raise ShapeError(f"{where} is not valid JSON: {shown(e, 300)}") from None
    _check_depth(obj, where)
    return obj


def _check_depth(obj: Any, where: str) -> None:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ShapeError(f"{where}: nested more than {MAX_DEPTH} levels deep")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children)


#: JSON value types by name, in the order they are tested (a bool is an int to Python).
_TYPE_NAMES = ((bool, "a boolean"), (int, "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


class Fields:
    """Typed reads of one JSON object; ``where`` names the document, ``path`` the object in
    it (``layers[2]``)."""

    def __init__(self, obj: Any, where: str, path: str = "") -> None:
        self.where = where
        self.path = path
        if not isinstance(obj, dict):
            self.fail(None, "must be an object", obj)
        self.obj: dict[str, Any] = obj

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def missing(self, key: str, expected: str) -> NoReturn:
        if key not in self.obj:
            raise ShapeError(f"{self.where}: missing '{shown(self.field(key))}'")
        self.fail(key, expected, None)

    def fail(self, key: str | None, expected: str, value: Any) -> NoReturn:
        name = self.path if key is None else self.field(key)
        label = f"'{shown(name)}' " if name else ""
        raise ShapeError(f"{self.where}: {label}{expected}, got {type_name(value)}")

    def has(self, key: str) -> bool:
        return key in self.obj

    def raw(self, key: str) -> Any:
        return self.obj.get(key)

    def string(self, key: str, *, required: bool = False, one_line: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.missing(key, "must be a string")
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string", value)
        if one_line and has_control(value):
            raise ShapeError(f"{self.where}: '{shown(self.field(key))}' has control characters: {shown(repr(value))}")
        return value

    def integer(self, key: str, *, required: bool = False, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.missing(key, "must be an integer")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be an integer", value)
        if not minimum <= value <= maximum:
            raise ShapeError(
                f"{self.where}: '{shown(self.field(key))}' is invalid: {value} is outside {minimum}..{maximum}"
            )
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(key, "must be true or false", value)
        return value

    def strings(self, key: str, *, one_line: bool = False) -> tuple[str, ...] | None:
        """A list of strings (None when absent or null)."""
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(key, "must be a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{key}[{i}]", "must be a string", item)
            if one_line and has_control(item):
                raise ShapeError(
                    f"{self.where}: '{shown(self.field(key))}[{i}]' has control characters: {shown(repr(item))}"
                )
        return tuple(value)

    def string_map(self, key: str, *, one_line_keys: bool = False) -> dict[str, str]:
        """An object of string values (empty when absent or null)."""
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "must be an object of strings", value)
        for k, v in value.items():
            if not isinstance(v, str):
                self.fail(f"{key}[{k!r}]", "must be a string", v)
            if one_line_keys and has_control(k):
                raise ShapeError(f"{self.where}: '{shown(self.field(key))}' has a key with control characters")
        return dict(value)

    def key_set(self, key: str) -> tuple[str, ...]:
        """The keys of an object of objects (``ExposedPorts``, ``Volumes``), sorted."""
        value = self.obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail(key, "must be an object", value)
        for k, v in value.items():
            if not isinstance(v, dict):
                self.fail(f"{key}[{k!r}]", "must be an object", v)
            if has_control(k):
                raise ShapeError(f"{self.where}: '{shown(self.field(key))}' has a key with control characters")
        return tuple(sorted(value))

    def child(self, key: str, *, required: bool = False) -> Fields | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.missing(key, "must be an object")
            return None
        return Fields(value, self.where, self.field(key))

    def objects(self, key: str, *, required: bool = False) -> list[Fields]:
        """A list of objects (empty when absent or null, unless required)."""
        value = self.obj.get(key)
        if value is None:
            if required:
                self.missing(key, "must be a list")
            return []
        if not isinstance(value, list):
            self.fail(key, "must be a list", value)
        return [Fields(item, self.where, f"{self.field(key)}[{i}]") for i, item in enumerate(value)]
