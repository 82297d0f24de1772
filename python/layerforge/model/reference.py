"""Tags (``org.opencontainers.image.ref.name`` values) and ``LAYOUT[:REF]`` arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError

# image-spec annotations.md: ref ::= component ("/" component)*,
# component ::= alphanum (separator alphanum)*, separator ::= [-._:@+] | "--"
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")

DEFAULT_TAG = "latest"


def validate_ref(ref: str, option: str = "--tag") -> str:
    if not ref or not _REF.match(ref):
        raise LayerforgeError(
            f"{option}: {ref!r} is not a valid reference name (letters, digits and -._:@+ separators, "
            "'/' between components)"
        )
    return ref


@dataclass(frozen=True)
class LayoutRef:
    """A layout directory and an optional reference inside it."""

    path: Path
    ref: str | None

    def __str__(self) -> str:
        return f"{self.path}:{self.ref}" if self.ref else str(self.path)


def parse_layout_ref(arg: str) -> LayoutRef:
    """Split ``DIR[:REF]`` (see :func:`split_layout_ref`)."""
    directory, ref = split_layout_ref(arg)
    return LayoutRef(Path(directory), ref)


def split_layout_ref(arg: str) -> tuple[str, str | None]:
    """``DIR[:REF]`` as the directory, as ``arg`` spells it, and the reference. References may
    contain ``:`` (``app:1.0``), so the split point is the first ``:`` whose left side is an
    existing layout; with none, the first ``:``."""
    if Path(arg, "oci-layout").is_file():
        return arg, None
    positions = [i for i, c in enumerate(arg) if c == ":"]
    for i in positions:
        if Path(arg[:i], "oci-layout").is_file():
            return arg[:i], _ref_part(arg[i + 1 :], arg)
    if positions:
        i = positions[0]
        return arg[:i], _ref_part(arg[i + 1 :], arg)
    return arg, None


def _ref_part(ref: str, arg: str) -> str | None:
    if ref == "":
        return None
    if not _REF.match(ref):
        raise LayerforgeError(f"{arg!r}: {ref!r} is not a valid reference name")
    return ref
