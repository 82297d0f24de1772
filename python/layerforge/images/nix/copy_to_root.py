"""The root layer: store paths merged into ``/`` (``/bin``, ``/etc``, ...), Nixery-style.

Each ``--copy-to-root`` path is walked like ``lndir``/``buildEnv`` does: directories
(including symlinks to directories inside the store) become real directories in the image
so several paths can share ``/bin``; every other entry becomes a symlink to its absolute
store location (``mode="symlink"``, the default) or a copy of it (``mode="copy"``). Two
paths providing the same file is an error unless both resolve to the same store file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError
from layerforge.images.nix.store_path import STORE_DIR

MODES = ("symlink", "copy")


@dataclass(frozen=True)
class RootEntry:
    """``kind`` is ``dir``, ``symlink`` (``target`` = absolute store path), ``copy`` (of the
    host file ``target``) or ``file`` (``data`` written as a 0644 file)."""

    dest: str
    kind: str
    target: str = ""
    provider: str = ""
    data: bytes = b""


def plan_root(paths: Sequence[str], mode: str = "symlink") -> dict[str, RootEntry]:
    """Entries of the root layer keyed by image path (no leading slash)."""
    if mode not in MODES:
        raise LayerforgeError(f"--copy-to-root-mode: {mode!r} is not one of {', '.join(MODES)}")
    entries: dict[str, RootEntry] = {}
    for top in sorted(set(paths)):
        if not os.path.isdir(top):
            raise LayerforgeError(f"--copy-to-root: '{top}' is not a directory")
        _merge(Path(top), "", provider=top, entries=entries, mode=mode, depth=0)
    return entries


def _merge(src: Path, rel: str, *, provider: str, entries: dict[str, RootEntry], mode: str, depth: int) -> None:
    if depth > 64:
        raise LayerforgeError(f"--copy-to-root: '{src}' nests too deeply (symlink loop?)")
    for name in sorted(os.listdir(src)):
        child = src / name
        dest = f"{rel}/{name}" if rel else name
        if _is_store_dir(child):
            existing = entries.get(dest)
            if existing is not None and existing.kind != "dir":
                raise _conflict(dest, existing.provider, provider)
            entries[dest] = RootEntry(dest, "dir", provider=provider)
            _merge(child, dest, provider=provider, entries=entries, mode=mode, depth=depth + 1)
            continue
        target = str(child)
        entry = RootEntry(dest, "copy" if mode == "copy" else "symlink", target, provider)
        existing = entries.get(dest)
        if existing is not None:
            if existing.kind == "dir" or os.path.realpath(existing.target) != os.path.realpath(target):
                raise _conflict(dest, existing.provider, provider)
            continue
        entries[dest] = entry


def _is_store_dir(p: Path) -> bool:
    """A directory, or a symlink to a directory inside the store (merged, not linked)."""
    if not p.is_symlink():
        return p.is_dir()
    real = os.path.realpath(p)
    return real.startswith(STORE_DIR + "/") and os.path.isdir(real)


def _conflict(dest: str, a: str, b: str) -> LayerforgeError:
    return LayerforgeError(f"--copy-to-root: conflicting files for /{dest}: provided by both {a} and {b}")


def add_to_spec(spec: LayerSpec, entries: dict[str, RootEntry]) -> None:
    for dest in sorted(entries):
        e = entries[dest]
        if e.kind == "dir":
            spec.add_dir(dest, 0o755)
        elif e.kind == "symlink":
            spec.add_symlink(dest, e.target)
        elif e.kind == "file":
            spec.add_file(dest, e.data, 0o644)
        else:
            spec.add_path(e.target, dest)
