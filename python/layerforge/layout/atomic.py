"""Atomic file replacement: write a temporary file, fsync it, rename it over the target."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data``; readers see the old or the new file, never a mix.
    ``tmp_dir`` must be on the same filesystem as ``path`` (default: its directory)."""
    directory = tmp_dir if tmp_dir is not None else path.parent
    directory.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
