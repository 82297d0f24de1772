"""Files read as blobs or caches: only regular files, of the size they are said to have.

A layout is untrusted: a name under ``blobs/sha256/`` may be a FIFO (``open`` blocks for
ever), ``/dev/zero`` (reads never end) or a file longer or shorter than its descriptor
says. Files are opened without blocking, checked with ``fstat`` on the descriptor that is
then read (no window for a swap in between), and read no further than the expected size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from layerforge.errors import LayerforgeError


class FileShapeError(LayerforgeError):
    """A file that is not a regular file of the expected size."""


def open_regular(path: Path, what: str, *, size: int | None = None, limit: int | None = None) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (symlinks to one are fine) of
    exactly ``size`` bytes, or of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileShapeError(f"{what} is missing ('{path}')") from None
    except OSError as e:
        raise FileShapeError(f"{what} cannot be opened ('{path}': {e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileShapeError(f"{what} is not a regular file ('{path}')")
        if size is not None and st.st_size != size:
            raise FileShapeError(f"{what} is {st.st_size} bytes, its descriptor says {size} ('{path}')")
        if limit is not None and st.st_size > limit:
            raise FileShapeError(f"{what} is {st.st_size} bytes, more than the {limit} allowed ('{path}')")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, what: str, *, size: int | None = None, limit: int | None = None) -> bytes:
    """The content of ``path`` (see :func:`open_regular`), never more than its checked size
    even if the file grows meanwhile."""
    with open_regular(path, what, size=size, limit=limit) as f:
        expected = os.fstat(f.fileno()).st_size
        data = f.read(expected + 1)
    if len(data) != expected:
        raise FileShapeError(f"{what} changed while it was read ('{path}')")
    return data
