"""A read-only view of the image's filesystem before it is built, to check that
entrypoints exist: store paths of the closure (read on the host, where Nix keeps them),
the root layer's entries, and optionally the files of a base image."""

from __future__ import annotations

import os
import stat as s
from collections.abc import Callable, Mapping, Sequence
from typing import Optional

from layerforge.errors import LayerforgeError
from layerforge.images.nix.copy_to_root import RootEntry
from layerforge.images.nix.store_path import STORE_DIR

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_SYMLINKS = 40
#: Files the view reads are small text databases (/etc/passwd); bigger ones are not read.
MAX_READ = 1 << 20

#: (kind, symlink target) of an image path, or None when absent. kind: dir, file, symlink.
Stat = Optional[tuple[str, str]]


class NotInClosure(LayerforgeError):
    pass


class ImageView:
    def __init__(
        self,
        closure_paths: set[str],
        root: Mapping[str, RootEntry],
        base_lookup: Callable[[str], Stat] | None = None,
        base_read: Callable[[str], bytes | None] | None = None,
    ) -> None:
        self.closure = closure_paths
        self.root = root
        self.root_dirs = {d for dest in root for d in _parents(dest)}
        self.base_lookup = base_lookup
        self.base_read = base_read

    def read(self, path: str) -> bytes | None:
        """The contents of the regular file ``path`` names (symlinks followed), wherever in the
        image it comes from, or None when there is none."""
        found = self.resolve(path)
        if found is None or found[1] != "file":
            return None
        real = found[0]
        if real.startswith(STORE_DIR + "/") and "/".join(real.split("/")[:4]) in self.closure:
            return _host_read(real)
        entry = self.root.get(real.lstrip("/"))
        if entry is not None:
            return entry.data if entry.kind == "file" else _host_read(entry.target)
        return self.base_read(real) if self.base_read is not None else None

    def stat(self, path: str) -> Stat:
        """Kind of an absolute, normalised image path (no symlink resolution of the last part)."""
        if path in ("/nix", STORE_DIR) and self.closure:
            return ("dir", "")
        if path.startswith(STORE_DIR + "/"):
            return self._store_stat(path)
        rel = path.lstrip("/")
        entry = self.root.get(rel)
        if entry is not None:
            return _entry_stat(entry.kind, entry.target)
        if rel in self.root_dirs:
            return ("dir", "")
        if self.base_lookup is not None:
            return self.base_lookup(path)
        return None

    def _store_stat(self, path: str) -> Stat:
        top = "/".join(path.split("/")[:4])
        if top in self.closure:
            return _host_stat(path)
        if self.base_lookup is not None:  # store paths a base image brings along
            found = self.base_lookup(path)
            if found is not None:
                return found
        raise NotInClosure(f"{path!r} is in {top!r}, which is not in the image's closure")

    def resolve(self, path: str) -> tuple[str, str] | None:
        """(resolved path, kind) following symlinks like the kernel, or None if absent."""
        parts = [p for p in path.split("/") if p and p != "."]
        done: list[str] = []
        hops = 0
        kind = "dir"
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/" + "/".join([*done, part])
            st = self.stat(here)
            if st is None:
                return None
            kind, target = st
            if kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise LayerforgeError(f"{path!r}: too many levels of symbolic links")
                base = [] if target.startswith("/") else done
                parts = [p for p in target.split("/") if p and p != "."] + parts
                done = list(base)
                continue
            if parts and kind != "dir":
                return None
            done.append(part)
        return "/" + "/".join(done), kind

    def find_program(self, argv0: str, env: Sequence[str], workdir: str | None) -> str:
        """Where ``argv0`` is found in the image (PATH search for bare names), or an error."""
        if "/" in argv0:
            full = argv0 if argv0.startswith("/") else f"{workdir or '/'}/{argv0}"
            candidates = [full]
        else:
            search = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
            candidates = [f"{d.rstrip('/')}/{argv0}" for d in search.split(":") if d.startswith("/")]
        for c in candidates:
            found = self.resolve(c)
            if found is not None and found[1] == "file":
                return found[0]
            if found is not None and "/" in argv0:
                raise LayerforgeError(f"{argv0!r} is a {found[1]} in the image, not a program")
        where = "" if "/" in argv0 else " on the image's PATH"
        raise LayerforgeError(f"{argv0!r} does not exist in the image{where}")


def _host_stat(path: str) -> Stat:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if s.S_ISLNK(st.st_mode):
        return ("symlink", os.readlink(path))
    if s.S_ISDIR(st.st_mode):
        return ("dir", "")
    return ("file", "")


def _host_read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_READ + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_READ else None


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _entry_stat(kind: str, target: str) -> Stat:
    """The kind of a copy-to-root entry: its own for dirs, symlinks and files it holds; the
    host file's for a copy."""
    if kind == "symlink":
        return ("symlink", target)
    if kind in ("dir", "file"):
        return (kind, "")
    return _host_stat(target)
