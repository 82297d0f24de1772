"""The cache directory: files someone else could have written decide nothing.

What the cache holds decides what goes into images (layer records and blobs) and what a
push reports without sending anything (push receipts), so only the current user may be able
to change it. A cache file is used only when it, the cache directory and every directory
between them belong to the current (effective) user and no one else, group or others, may
write to them; anything else is ignored with one warning line (once per offending file or
directory and process) and nothing is written into such a directory. Directories the cache
makes are created 0700 and the files it writes 0600. The native command applies the same
rule to the receipts it reads (``rust/layerforge-cli/src/files.rs``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from layerforge.trust.text import shown

log = logging.getLogger("layerforge.cache")

#: Mode of the files the cache writes.
FILE_MODE = 0o600
_DIR_MODE = 0o700
_OTHERS_WRITE = 0o022

_warned: set[Path] = set()


def _problem(st: os.stat_result) -> str | None:
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
    if st.st_mode & _OTHERS_WRITE:
        return f"is writable by other users (mode {st.st_mode & 0o7777:04o})"
    return None


def _chain(root: Path, path: Path) -> list[Path]:
    """``root`` and every path from it down to ``path`` (``root`` itself or below it)."""
    parts = path.relative_to(root).parts
    return [root.joinpath(*parts[:i]) for i in range(len(parts) + 1)]


def usable(root: Path, path: Path, what: str) -> bool:
    """Whether ``path`` (``root``, the cache directory, or a file or directory below it) may
    be used: it and every directory from ``root`` down to it exist and are private (see the
    module). A missing one is a plain no; one that is not private is a no with a warning."""
    for p in _chain(root, path):
        try:
            st = p.stat()
        except OSError:
            return False
        problem = _problem(st)
        if problem is not None:
            if p not in _warned:
                _warned.add(p)
                log.warning("warning: ignoring %s: '%s' %s", what, shown(p), problem)
            return False
    return True


def private_dir(root: Path, directory: Path, what: str) -> bool:
    """Make ``directory`` (``root`` or below it), each missing directory 0700 (those above
    ``root`` included), and tell whether the cache may write into it (:func:`usable`)."""
    missing = []
    p = directory
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            pass
        except OSError:
            return False
    return usable(root, directory, what)


def keep_private(path: Path) -> None:
    """Take group and others' write permission from a file of this user's the cache keeps (a
    blob hard-linked from a layout has that layout's mode), so that it stays usable."""
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & _OTHERS_WRITE:
            path.chmod(st.st_mode & 0o7777 & ~_OTHERS_WRITE)
