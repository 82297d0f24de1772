"""Reading a tar from input (a layer, a ``--rootfs`` archive): only a regular file is
opened, and a truncated or non-tar stream is one error naming it, wherever in the reading it
shows (headers, member data, compression)."""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.trust.blobs import open_regular
from layerforge.trust.text import shown

#: What reading a damaged (possibly compressed) tar may raise.
TAR_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    UnicodeError,
    OverflowError,
)


@contextlib.contextmanager
def reading_tar(path: Path, what: str, mode: str = "r:", *, follow: bool = False) -> Iterator[tarfile.TarFile]:
    """``tarfile.open(path, mode)`` for the block; reading errors become one
    :class:`LayerforgeError` naming ``what``. ``mode`` "r:*" accepts gzip, bzip2 and xz;
    ``follow`` lets a file the user named be a symlink."""
    with open_regular(path, what, follow=follow) as fd, os.fdopen(os.dup(fd), "rb") as f:
        try:
            with tarfile.open(fileobj=f, mode=mode) as tar:  # type: ignore[call-overload]
                yield tar
        except TAR_ERRORS as e:
            raise LayerforgeError(f"{what} is not a valid tar archive: {e}") from None
        except OSError as e:
            if e.errno is not None:
                raise
            raise LayerforgeError(f"{what} is not a valid tar archive: {e}") from None  # BadGzipFile and kin


def check_complete(tar: tarfile.TarFile, what: str) -> None:
    """After every member was read: the last member's data is all there and nothing but
    zero blocks follows (``tarfile`` takes a damaged or cut header for the end)."""
    f = tar.fileobj
    assert f is not None
    # The archive's size, when it is a plain file (not a decompressing stream).
    end = os.fstat(f.fileno()).st_size if isinstance(f, io.BufferedReader) else None
    members = tar.getmembers()
    last = members[-1] if members else None
    if end is not None and last is not None and last.sparse is None and last.offset_data + last.size > end:
        raise LayerforgeError(f"{what} is not a valid tar archive: member {shown(repr(last.name))} is truncated")
    try:
        f.seek(tar.offset)
        while chunk := f.read(1 << 16):
            if chunk.count(0) != len(chunk):
                raise LayerforgeError(f"{what} is not a valid tar archive: a damaged or truncated header")
    except TAR_ERRORS as e:
        raise LayerforgeError(f"{what} is not a valid tar archive: {e}") from None
