"""Paths inside a root directory that input names: archive members, tags, package names.

Every operation walks the path one component at a time from a directory fd (``openat``
with ``O_NOFOLLOW | O_DIRECTORY``), so no symlink in a parent component is ever followed,
whatever a lower layer left there, and acts on the last component relative to its parent's
fd (``unlinkat``, ``mkdirat``, ``fchownat`` without following). String prefixes and
``realpath`` are never used to decide what is inside. Errors are :class:`LayerforgeError`s
naming the path (escaped with :func:`shown`) and what is wrong.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from layerforge.errors import LayerforgeError
from layerforge.trust.text import shown

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: Components of a path inside a root; deeper names are refused (PATH_MAX allows ~2,000,
#: real images stay far below 100, and removal holds one fd per level).
MAX_COMPONENTS = 256
#: Symlinks followed when reading a file of the tree as its own root would (chroot-like).
MAX_SYMLINKS = 40


def components(rel: str, what: str = "path") -> list[str]:
    """The components of ``rel``, a relative path already free of ``.``/``..``/empty parts."""
    if not rel:
        return []
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in rel:
        raise LayerforgeError(f"{what} {shown(repr(rel))} is not a plain relative path")
    if len(parts) > MAX_COMPONENTS:
        raise LayerforgeError(f"{what} {shown(repr(rel[:200]))}... is more than {MAX_COMPONENTS} directories deep")
    return parts


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lstat_at(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _kind(st: os.stat_result) -> str:
    return "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"


def remove_at(dfd: int, name: str) -> None:
    """Remove ``name`` in directory ``dfd``, whatever it is, never following a symlink;
    directories are emptied first (made writable when they are not)."""
    st = _lstat_at(dfd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    fd = os.open(name, _DIR, dir_fd=dfd)
    try:
        if st.st_mode & 0o700 != 0o700:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
        with os.scandir(fd) as it:
            names = [e.name for e in it]
        for child in names:
            remove_at(fd, child)
    finally:
        _close(fd)
    os.rmdir(name, dir_fd=dfd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` (a scratch tree, possibly with read-only directories) without
    following any symlink in it; absent is fine."""
    parent = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_at(parent, path.name)
    finally:
        _close(parent)


class RootDir:
    """A directory whose contents input names: every path is resolved below it without
    following symlinks (except :meth:`read_file`, which resolves them as the tree's own
    root would, never above it)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if create:
            path.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise LayerforgeError(f"cannot open directory '{path}': {e.strerror}") from None

    def close(self) -> None:
        if self.fd >= 0:
            _close(self.fd)
            self.fd = -1

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking ---------------------------------------------------------------------------

    def _walk(self, parts: list[str], *, create: bool, rel: str) -> int | None:
        """A new fd of the directory ``parts`` (each component a real directory). With
        ``create``, missing components are made and a symlink or file on the way is an
        error; without, either means there is no such directory (None)."""
        fd = os.dup(self.fd)
        for i, part in enumerate(parts):
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    _close(fd)
                    return None
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR, dir_fd=fd)
                except OSError as e:
                    _close(fd)
                    raise LayerforgeError(
                        f"cannot create directory '{shown('/'.join(parts[: i + 1]))}': {e.strerror}"
                    ) from None
            except OSError as e:
                st = _lstat_at(fd, part) if e.errno in (errno.ELOOP, errno.ENOTDIR) else None
                _close(fd)
                if not create and st is not None:
                    return None
                if st is not None:
                    raise LayerforgeError(
                        f"'{shown('/'.join(parts[: i + 1]))}' is {_kind(st)} "
                        "(nothing is written through a symlink or into a file)"
                    ) from None
                raise LayerforgeError(f"cannot open '{shown('/'.join(parts[: i + 1]))}': {e.strerror}") from None
            _close(fd)
            fd = nxt
        return fd

    @contextlib.contextmanager
    def parent(self, rel: str, *, create: bool = True) -> Iterator[tuple[int | None, str]]:
        """(fd of ``rel``'s parent directory or None when it does not exist, last component)."""
        parts = components(rel)
        if not parts:
            raise LayerforgeError("the root itself cannot be replaced")
        fd = self._walk(parts[:-1], create=create, rel=rel)
        try:
            yield fd, parts[-1]
        finally:
            if fd is not None:
                _close(fd)

    def _fail(self, rel: str, action: str, e: BaseException) -> LayerforgeError:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return LayerforgeError(f"cannot {action} '{shown(rel)}': {reason}")

    # -- queries ---------------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """What is at ``rel`` (not following a final symlink); None when absent or when a
        parent is not a real directory."""
        with self.parent(rel, create=False) as (fd, name):
            return None if fd is None else _lstat_at(fd, name)

    def is_dir(self, rel: str) -> bool:
        if not rel:
            return True
        st = self.lstat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    # -- changes ---------------------------------------------------------------------------

    def remove(self, rel: str) -> None:
        """Remove whatever is at ``rel``. A parent that is not a real directory means there
        is nothing there to remove: nothing is looked up through a symlink."""
        with self.parent(rel, create=False) as (fd, name):
            if fd is None:
                return
            try:
                remove_at(fd, name)
            except OSError as e:
                raise self._fail(rel, "remove", e) from None

    def clear_dir(self, rel: str) -> None:
        """Remove the contents of directory ``rel`` (the root when empty); nothing when
        ``rel`` is not a real directory."""
        fd = self._walk(components(rel), create=False, rel=rel)
        if fd is None:
            return
        try:
            with os.scandir(fd) as it:
                names = [e.name for e in it]
            for name in names:
                remove_at(fd, name)
        except OSError as e:
            raise self._fail(rel or ".", "empty", e) from None
        finally:
            _close(fd)

    def make_dir(self, rel: str, *, replace: bool = True) -> None:
        """A real directory at ``rel`` (parents made): kept if there, else made, replacing a
        symlink or file there when ``replace`` (else leaving it)."""
        with self.parent(rel) as (fd, name):
            assert fd is not None
            st = _lstat_at(fd, name)
            try:
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    if not replace:
                        return
                    os.unlink(name, dir_fd=fd)
                    st = None
                if st is None:
                    os.mkdir(name, 0o755, dir_fd=fd)
            except OSError as e:
                raise self._fail(rel, "create directory", e) from None

    def write_file(self, rel: str, src: IO[bytes], *, mode: int, owner: tuple[int, int] | None, mtime: float) -> None:
        """A new regular file at ``rel`` (replacing what is there) with ``src``'s bytes."""
        with self.parent(rel) as (dfd, name):
            assert dfd is not None
            try:
                remove_at(dfd, name)
                fd = os.open(name, _NEW_FILE, 0o600, dir_fd=dfd)
            except OSError as e:
                raise self._fail(rel, "create", e) from None
            try:
                while chunk := src.read(1 << 20):  # read errors are the caller's (a bad tar)
                    try:
                        _write_all(fd, chunk)
                    except OSError as e:
                        raise self._fail(rel, "write", e) from None
                self._set_meta(fd, rel, mode=mode, owner=owner, mtime=mtime)
            finally:
                _close(fd)

    def symlink(self, rel: str, target: str, *, owner: tuple[int, int] | None, mtime: float) -> None:
        with self.parent(rel) as (fd, name):
            assert fd is not None
            try:
                remove_at(fd, name)
                os.symlink(target, name, dir_fd=fd)
                if owner is not None:
                    os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                os.utime(name, (mtime, mtime), dir_fd=fd, follow_symlinks=False)
            except (OSError, OverflowError, ValueError) as e:
                raise self._fail(rel, "create symlink", e) from None

    def hardlink(self, rel: str, target: str) -> None:
        """``rel`` as a second name of ``target`` (itself, if a symlink: never what it points
        at), both inside the root."""
        with self.parent(target, create=False) as (sfd, sname), self.parent(rel) as (dfd, dname):
            assert dfd is not None
            if sfd is None or _lstat_at(sfd, sname) is None:
                raise LayerforgeError(f"hard link '{shown(rel)}': its target '{shown(target)}' does not exist")
            try:
                remove_at(dfd, dname)
                os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
            except OSError as e:
                raise self._fail(rel, f"link to '{shown(target)}'", e) from None

    def mknod(self, rel: str, mode: int, device: int, *, owner: tuple[int, int] | None, mtime: float) -> None:
        """A device node or FIFO (``mode`` includes the file type). PermissionError passes
        through (callers skip device nodes when not root)."""
        with self.parent(rel) as (fd, name):
            assert fd is not None
            try:
                remove_at(fd, name)
                os.mknod(name, mode, device, dir_fd=fd)
            except PermissionError:
                raise
            except (OSError, OverflowError, ValueError) as e:
                raise self._fail(rel, "create node", e) from None
            try:
                if owner is not None:
                    os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                os.chmod(name, mode & 0o7777, dir_fd=fd)  # just made by us: not a symlink
                os.utime(name, (mtime, mtime), dir_fd=fd, follow_symlinks=False)
            except (OSError, OverflowError, ValueError) as e:
                raise self._fail(rel, "set the mode of", e) from None

    def set_dir_meta(self, rel: str, *, mode: int, owner: tuple[int, int] | None, mtime: float) -> bool:
        """Apply mode, owner and time to the directory ``rel`` itself, opened without
        following any symlink; False (nothing changed) when it is no longer a directory."""
        fd = self._walk(components(rel), create=False, rel=rel)
        if fd is None:
            return False
        try:
            self._set_meta(fd, rel or ".", mode=mode, owner=owner, mtime=mtime)
        finally:
            _close(fd)
        return True

    def _set_meta(self, fd: int, rel: str, *, mode: int, owner: tuple[int, int] | None, mtime: float) -> None:
        """Owner (first: chown clears setuid bits), mode and time of the open file ``fd``."""
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode & 0o7777)
            os.utime(fd, (mtime, mtime))
        except (OSError, OverflowError, ValueError) as e:
            raise self._fail(rel, "set the mode of", e) from None

    def rename_into(self, src: Path, rel: str) -> None:
        """Rename the file ``src`` (on the same filesystem) to ``rel`` atomically."""
        with self.parent(rel) as (fd, name):
            assert fd is not None
            try:
                os.replace(src, name, dst_dir_fd=fd)
            except OSError as e:
                raise self._fail(rel, "replace", e) from None

    # -- reading the tree as its own root ------------------------------------------------

    def resolve(self, rel: str) -> list[str]:
        """``rel`` with symlinks resolved as if the root were ``/`` (absolute targets start
        at the root, ``..`` stops there): the components of where it leads."""
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            fd = self._walk(done, create=False, rel=rel)
            if fd is None:
                return [*done, part, *todo]
            try:
                st = _lstat_at(fd, part)
                if st is None or not stat.S_ISLNK(st.st_mode):
                    done.append(part)
                    continue
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise LayerforgeError(f"'{shown(rel)}': too many levels of symbolic links")
                target = os.readlink(part, dir_fd=fd)
            finally:
                _close(fd)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
        return done

    def read_file(self, rel: str, limit: int) -> bytes | None:
        """The bytes of the regular file ``rel`` leads to (symlinks resolved inside the root),
        None when there is none; at most ``limit`` bytes, a FIFO or device is refused."""
        parts = self.resolve(rel)
        if not parts:
            return None
        fd = self._walk(parts[:-1], create=False, rel=rel)
        if fd is None:
            return None
        try:
            f = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return None
        finally:
            _close(fd)
        try:
            if not stat.S_ISREG(os.fstat(f).st_mode):
                raise LayerforgeError(f"the image's /{shown(rel)} is not a regular file")
            with os.fdopen(os.dup(f), "rb") as src:
                data = src.read(limit + 1)
        finally:
            _close(f)
        if len(data) > limit:
            raise LayerforgeError(f"the image's /{shown(rel)} is larger than {limit} bytes")
        return data
