"""Untrusted text in messages: names, refs and registry answers are shown, never obeyed.

A tag read from a hostile ``index.json`` or an error code sent by a hostile registry may hold
terminal escapes or newlines; printed raw, they could rewrite the user's terminal or forge
log lines. ``shown`` makes any such string safe to put in a one-line message.
"""

from __future__ import annotations

_LIMIT = 512


def shown(value: object, limit: int = _LIMIT) -> str:
    """``value`` as text with control characters (C0, DEL, C1, line/paragraph separators)
    written as escapes (``\\x1b``, ``\\n``) and cut to ``limit`` characters."""
    text = str(value)
    out = []
    for ch in text[:limit]:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    if len(text) > limit:
        out.append(f"... ({len(text) - limit} more characters)")
    return "".join(out)


def has_control(value: str) -> bool:
    """Whether ``value`` holds a character ``shown`` would escape (for strict field checks:
    newlines in ``--env``, ``--user``, ``os.features`` ...)."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or ord(c) in (0x2028, 0x2029) for c in value)
