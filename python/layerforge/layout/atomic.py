"""Atomic file replacement: write a temporary file, fsync it, rename it over the target."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``; readers see the old or the new file, never a mix.
    ``tmp_dir`` must be on the same filesystem as ``path`` (default: its directory); the new
    file has ``mode`` less the umask."""
    directory = tmp_dir if tmp_dir is not None else path.parent
    directory.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def exchange_dirs(a: Path, b: Path) -> bool:
    """Swap two directories on one filesystem in one step (``renameat2(RENAME_EXCHANGE)``);
    False when the kernel or filesystem cannot (the caller falls back to two renames)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
