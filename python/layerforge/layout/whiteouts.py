"""What a layer member's name means under the OCI/overlay rules, for every reader of layers
(unpacking, listing an image's files).

* names are relative to the image root: a leading ``/`` or ``./`` is dropped, a name that
  climbs out with ``..`` is an error;
* ``DIR/.wh..wh..opq`` (opaque marker): the lower layers' contents of DIR are hidden;
* ``DIR/.wh.NAME`` (whiteout): the lower layers' DIR/NAME is removed; a whiteout naming
  nothing, ``.`` or ``..`` is an error;
* other ``.wh..wh.*`` names are aufs metadata (``.wh..wh.plnk``, ``.wh..wh.aufs``): ignored,
  with anything below them, as containerd and Docker do.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

from layerforge.errors import LayerforgeError
from layerforge.trust.rootfs import components
from layerforge.trust.text import shown

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
META = ".wh..wh."

Kind = Literal["entry", "whiteout", "opaque", "skip"]


@dataclass(frozen=True)
class Change:
    """``entry``: ``path`` is created; ``whiteout``: ``path`` is removed; ``opaque``: the
    contents of directory ``path`` ("" for the root) are removed; ``skip``: nothing."""

    kind: Kind
    path: str


def clean_name(name: str, what: str = "layer") -> str:
    """A member name relative to the image root, without ``.`` parts ("" for the root)."""
    if "\0" in name:
        raise LayerforgeError(f"{what}: member {shown(repr(name))} has a NUL byte in its name")
    n = posixpath.normpath(name.lstrip("/"))
    if n == ".." or n.startswith("../"):
        raise LayerforgeError(f"{what}: member {shown(repr(name))} escapes the root")
    if n == ".":
        return ""
    components(n, f"{what}: member")  # depth bound
    return n


def classify(name: str, what: str = "layer") -> Change:
    rel = clean_name(name, what)
    if not rel:
        return Change("skip", "")
    parent, base = posixpath.split(rel)
    if any(p.startswith(META) for p in parent.split("/")):
        return Change("skip", rel)
    if any(p.startswith(WHITEOUT) for p in parent.split("/")):
        raise LayerforgeError(f"{what}: member {shown(repr(name))} lies inside a whiteout")
    if base == OPAQUE:
        return Change("opaque", parent)
    if base.startswith(META):
        return Change("skip", rel)
    if base.startswith(WHITEOUT):
        hidden = base[len(WHITEOUT) :]
        if hidden in ("", ".", ".."):
            raise LayerforgeError(f"{what}: whiteout {shown(repr(name))} names no file")
        return Change("whiteout", posixpath.join(parent, hidden))
    return Change("entry", rel)


def is_under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or below it ("" is the root, above everything)."""
    return not top or path == top or path.startswith(top + "/")
