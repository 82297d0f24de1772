"""The root layer: store paths merged into ``/`` (``/bin``, ``/etc``, ...), Nixery-style.

Each ``--copy-to-root`` path is walked like ``lndir``/``buildEnv`` does: directories
(including symlinks to directories inside the store) become real directories in the image
so several paths can share ``/bin``; every other entry becomes a symlink to its absolute
store location (``mode="symlink"``, the default) or a copy of it (``mode="copy"``). Two
paths providing the same file is an error unless both resolve to the same store file.

Everything read stays inside the store: a copy-to-root path, and every directory merged
below it, is read through its resolved location, which must lie in the store; a store path
that is a symlink out of it (``ln -s /home/ci/.docker $out``) is refused, and an entry is
copied from a parent that is a real store directory, never through a symlink (a symlink
entry itself is stored as a symlink).
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
    store = os.path.realpath(STORE_DIR)
    for top in sorted(set(paths)):
        real = os.path.realpath(top)
        if not _inside(real, store):
            raise LayerforgeError(
                f"--copy-to-root: '{top}' resolves to '{real}', outside {STORE_DIR}: a copy-to-root path must be "
                "a directory in the Nix store (build the files into the derivation's output instead of linking "
                "to them)"
            )
        if not os.path.isdir(real):
            raise LayerforgeError(f"--copy-to-root: '{top}' is not a directory")
        _merge(Path(top), Path(real), "", provider=top, entries=entries, mode=mode, depth=0)
    return entries


def _merge(
    src: Path, real: Path, rel: str, *, provider: str, entries: dict[str, RootEntry], mode: str, depth: int
) -> None:
    """Merge the directory ``src`` (its name in the store, for symlink targets), read at its
    resolved location ``real`` (inside the store)."""
    if depth > 64:
        raise LayerforgeError(f"--copy-to-root: '{src}' nests too deeply (symlink loop?)")
    for name in sorted(os.listdir(real)):
        child = src / name
        dest = f"{rel}/{name}" if rel else name
        child_dir = _store_dir(real / name)
        if child_dir is not None:
            existing = entries.get(dest)
            if existing is not None and existing.kind != "dir":
                raise _conflict(dest, existing.provider, provider)
            entries[dest] = RootEntry(dest, "dir", provider=provider)
            _merge(child, child_dir, dest, provider=provider, entries=entries, mode=mode, depth=depth + 1)
            continue
        if mode == "copy":  # read from its real parent: the last component is never followed
            entry = RootEntry(dest, "copy", str(real / name), provider)
        else:
            entry = RootEntry(dest, "symlink", str(child), provider)
        existing = entries.get(dest)
        if existing is not None:
            if existing.kind == "dir" or os.path.realpath(existing.target) != os.path.realpath(entry.target):
                raise _conflict(dest, existing.provider, provider)
            continue
        entries[dest] = entry


def _store_dir(p: Path) -> Path | None:
    """Where to read ``p`` (an entry of a directory inside the store) as a directory to
    merge: itself when it is a real directory, its resolved location when it is a symlink to
    a directory inside the store; None for anything else (copied or linked, not merged)."""
    if not p.is_symlink():
        return p if p.is_dir() else None
    real = os.path.realpath(p)
    return Path(real) if _inside(real, os.path.realpath(STORE_DIR)) and os.path.isdir(real) else None


def _inside(real: str, store: str) -> bool:
    """``real`` (a resolved path) lies strictly below the resolved store directory."""
    return real.startswith(store + "/")


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
