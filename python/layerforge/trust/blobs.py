"""Blobs and documents read from a layout someone else wrote.

Only regular files are read (opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with
``fstat``: a FIFO, a device or a symlink is refused at once, never waited on); reads stop one
byte past the descriptor's size; a blob enters a layout only after its bytes were checked
against its digest and size, whether it is hard-linked or copied.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from layerforge.errors import LayoutError

#: Largest JSON document (index.json, manifest, config) read into memory.
MAX_DOCUMENT = 64 << 20
_CHUNK = 1 << 20


class BlobMissing(LayoutError):
    """The blob file is not there."""


@contextlib.contextmanager
def open_regular(path: Path, what: str, *, follow: bool = False, size: int | None = None) -> Iterator[int]:
    """An fd of the regular file ``path``; a FIFO or device is an error, and so is a symlink
    unless ``follow`` (files the user names: a blob inside a layout is never a symlink).
    With ``size``, the file must have exactly that many bytes (checked on the fd)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BlobMissing(f"{what} is missing ('{path}')") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LayoutError(f"{what}: '{path}' is a symlink, not a regular file") from None
        raise LayoutError(f"{what}: cannot read '{path}': {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LayoutError(f"{what}: '{path}' is not a regular file")
        if size is not None and st.st_size != size:
            raise LayoutError(f"{what} is {st.st_size} bytes, its descriptor says {size} ('{path}')")
        yield fd
    finally:
        os.close(fd)


def _chunks(fd: int, size: int | None, what: str) -> Iterator[bytes]:
    """The file's bytes, at most ``size`` + 1 of them; a size mismatch is an error."""
    left = None if size is None else size + 1
    total = 0
    while left is None or left > 0:
        chunk = os.read(fd, _CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            break
        total += len(chunk)
        if size is not None and total > size:
            raise LayoutError(f"{what} has more than {size} bytes, its descriptor says {size}")
        if left is not None:
            left -= len(chunk)
        yield chunk
    if size is not None and total != size:
        raise LayoutError(f"{what} has only {total} bytes, its descriptor says {size}")


def read_document(
    path: Path, what: str, size: int | None = None, limit: int = MAX_DOCUMENT, *, follow: bool = False
) -> bytes:
    """A small file (JSON document) read whole: ``size`` bytes exactly when given, at most
    ``limit`` bytes in any case."""
    if size is not None and size > limit:
        raise LayoutError(f"{what}: its descriptor says {size} bytes, more than the {limit} a document may have")
    with open_regular(path, what, follow=follow) as fd:
        data = bytearray()
        for chunk in _chunks(fd, size, what):
            data += chunk
            if len(data) > limit:
                raise LayoutError(f"{what} is larger than {limit} bytes")
    return bytes(data)


def read_head(path: Path, n: int, what: str) -> bytes:
    """The first ``n`` bytes of a regular file the user named (symlinks followed)."""
    with open_regular(path, what, follow=True) as fd:
        return os.read(fd, n)


def check_blob(path: Path, digest: str, size: int | None, what: str) -> None:
    """Read ``path`` through and require its digest (and size)."""
    with open_regular(path, what) as fd:
        _verify_fd(fd, digest, size, what)


def _verify_fd(fd: int, digest: str, size: int | None, what: str) -> None:
    h = hashlib.sha256()
    for chunk in _chunks(fd, size, what):
        h.update(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise LayoutError(f"{what} does not match its digest {digest} (corrupt layout)")


def temp_name(tmp_dir: Path, name: str) -> Path:
    """A scratch name in a layout's tmp dir, carrying our pid (see OciLayout.clean_stale_temp)."""
    return tmp_dir / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def import_blob(
    source: Path, target: Path, digest: str, size: int | None, tmp_dir: Path, *, link: bool = True, what: str
) -> None:
    """Make ``target`` hold blob ``source`` (a hard link when ``link`` and on one filesystem,
    else a copy), after checking its bytes against ``digest`` and ``size``; it appears at
    ``target`` atomically, and only if it matched."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(tmp_dir, target.name)
    with open_regular(source, what) as fd:
        try:
            if link and _linked(source, fd, tmp):
                _verify_fd(fd, digest, size, what)
            else:
                _copy_verified(fd, tmp, digest, size, what)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _linked(source: Path, fd: int, tmp: Path) -> bool:
    """Whether ``tmp`` could be made a hard link to the very file open as ``fd`` (the link
    is made by path, never following a symlink, then checked to be that file)."""
    try:
        os.link(source, tmp, follow_symlinks=False)
    except OSError:
        return False
    st, linked = os.fstat(fd), os.stat(tmp, follow_symlinks=False)
    if (st.st_dev, st.st_ino) != (linked.st_dev, linked.st_ino):
        tmp.unlink()
        return False
    return True


def _copy_verified(fd: int, tmp: Path, digest: str, size: int | None, what: str) -> None:
    h = hashlib.sha256()
    with open(tmp, "xb") as out:
        for chunk in _chunks(fd, size, what):
            h.update(chunk)
            out.write(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise LayoutError(f"{what} does not match its digest {digest} (corrupt layout)")
