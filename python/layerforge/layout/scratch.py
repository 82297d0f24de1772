"""Scratch directories next to what a command writes, named after the process that made them
(``.layerforge-<kind>-<pid>-<hex8>``), so that what a killed process left (``kill -9``
runs no cleanup) is recognised and removed by the next run, and a live run's is left alone."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from layerforge.trust.rootfs import remove_tree

_NAME = re.compile(r"^\.layerforge-([a-z]+)-(\d+)-[0-9a-f]{8}\Z")


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scratch_name(kind: str) -> str:
    return f".layerforge-{kind}-{os.getpid()}-{os.urandom(4).hex()}"


def is_stale(name: str) -> bool:
    """Whether ``name`` is a scratch name of a process that is gone."""
    m = _NAME.match(name)
    return m is not None and not pid_alive(int(m.group(2)))


def clean_stale(parent: Path) -> None:
    """Remove the scratch directories (and files) of dead processes in ``parent``."""
    try:
        names = [p.name for p in parent.iterdir()]
    except OSError:
        return
    for name in names:
        if is_stale(name):
            with contextlib.suppress(OSError):
                remove_tree(parent / name)


def new_scratch_dir(parent: Path, kind: str) -> Path:
    """A fresh, private scratch directory in ``parent`` (stale ones there are swept first);
    the caller removes it (:func:`remove_tree`)."""
    clean_stale(parent)
    path = parent / scratch_name(kind)
    path.mkdir(mode=0o700)
    return path


@contextlib.contextmanager
def scratch_dir(parent: Path, kind: str) -> Iterator[Path]:
    """:func:`new_scratch_dir` for the block, removed afterwards whatever happens."""
    path = new_scratch_dir(parent, kind)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            remove_tree(path)
