"""The part of TOML that containers-registries.conf(5) files use, read strictly: comments,
``[table]`` and ``[[array of tables]]`` headers (dotted, bare or quoted keys), ``key = value``
with basic and literal strings, booleans, integers and (multi-line) arrays of those. Anything
else (inline tables, dates, floats, multi-line strings, dotted keys) is refused with the line
it is on. One reader on every Python the tool runs on (``tomllib`` exists from 3.11 only)."""

from __future__ import annotations

import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_INT = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
MAX_DEPTH = 32


class TomlRefused(ValueError):
    """Text this reader does not accept; the message starts with ``line N:``."""


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def fail(self, what: str) -> TomlRefused:
        return TomlRefused(f"line {self.line}: {what}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def blanks(self, newlines: bool = False) -> None:
        """Skip spaces and tabs (and newlines and comments, with ``newlines``)."""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t" or (newlines and c in "\r\n"):
                self.pos += 1
            elif newlines and c == "#":
                self.comment()
            else:
                return

    def comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def end_of_line(self) -> None:
        self.blanks()
        if self.peek() == "#":
            self.comment()
        if self.peek() == "\r":
            self.pos += 1
        if self.peek() not in ("\n", ""):
            raise self.fail(f"unexpected {self.peek()!r}")
        self.pos += 1

    def key(self) -> str:
        c = self.peek()
        if c in ('"', "'"):
            return self.string()
        m = _BARE.match(self.text, self.pos)
        if not m:
            raise self.fail("a key is expected")
        self.pos = m.end()
        return m.group()

    def dotted(self) -> list[str]:
        keys = [self.key()]
        self.blanks()
        while self.peek() == ".":
            self.pos += 1
            self.blanks()
            keys.append(self.key())
            self.blanks()
        return keys

    def string(self) -> str:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            raise self.fail("multi-line strings are not supported here")
        self.pos += 1
        out: list[str] = []
        while True:
            c = self.peek()
            if c in ("", "\n"):
                raise self.fail("unterminated string")
            self.pos += 1
            if c == quote:
                return "".join(out)
            if c == "\\" and quote == '"':
                out.append(self.escape())
            else:
                out.append(c)

    def escape(self) -> str:
        c = self.peek()
        self.pos += 1
        if c in _ESCAPES:
            return _ESCAPES[c]
        if c in ("u", "U"):
            n = 4 if c == "u" else 8
            digits = self.text[self.pos : self.pos + n]
            if len(digits) != n or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.fail("bad unicode escape")
            self.pos += n
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.fail("bad unicode escape")
            return chr(code)
        raise self.fail(f"bad escape \\{c}")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail("arrays nested too deeply")
        c = self.peek()
        if c in ('"', "'"):
            return self.string()
        if c == "[":
            return self.array(depth)
        for word, value in (("true", True), ("false", False)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return value
        m = _INT.match(self.text, self.pos)
        if m and not re.match(r"[0-9A-Za-z_.:-]", self.text[m.end() : m.end() + 1]):
            self.pos = m.end()
            return int(m.group().replace("_", ""))
        raise self.fail("a string, boolean, integer or array is expected")

    def array(self, depth: int) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        while True:
            self.blanks(newlines=True)
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.value(depth + 1))
            self.blanks(newlines=True)
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise self.fail("',' or ']' is expected in an array")


def _descend(root: dict[str, Any], keys: list[str], reader: _Reader) -> dict[str, Any]:
    """The table at ``keys`` (the last element of an array of tables on the way)."""
    table = root
    for k in keys:
        nxt = table.setdefault(k, {})
        if isinstance(nxt, list) and nxt and isinstance(nxt[-1], dict):
            nxt = nxt[-1]
        if not isinstance(nxt, dict):
            raise reader.fail(f"{'.'.join(keys)!r} is not a table")
        table = nxt
    return table


def loads(text: str) -> dict[str, Any]:
    """The document ``text`` as nested dicts and lists, like ``tomllib.loads``."""
    r = _Reader(text)
    root: dict[str, Any] = {}
    current = root
    defined: set[tuple[str, ...]] = set()
    while True:
        r.blanks(newlines=True)
        if r.peek() == "":
            return root
        if r.peek() == "[":
            many = r.text.startswith("[[", r.pos)
            r.pos += 2 if many else 1
            r.blanks()
            keys = r.dotted()
            if not r.text.startswith("]]" if many else "]", r.pos):
                raise r.fail("unterminated table header")
            r.pos += 2 if many else 1
            r.end_of_line()
            parent = _descend(root, keys[:-1], r)
            if many:
                array = parent.setdefault(keys[-1], [])
                if not isinstance(array, list):
                    raise r.fail(f"{'.'.join(keys)!r} is not an array of tables")
                array.append({})
                current = array[-1]
            else:
                if tuple(keys) in defined or isinstance(parent.get(keys[-1]), list):
                    raise r.fail(f"table {'.'.join(keys)!r} defined twice")
                defined.add(tuple(keys))
                current = _descend(root, keys, r)
            continue
        key = r.key()
        r.blanks()
        if r.peek() != "=":
            raise r.fail("'=' is expected after a key (dotted keys are not supported here)")
        r.pos += 1
        r.blanks()
        if key in current:
            raise r.fail(f"key {key!r} defined twice")
        current[key] = r.value()
        r.end_of_line()
