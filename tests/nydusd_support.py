"""The Nydus runtime oracle for tests: upstream ``nydusd`` 2.2.0 (nydus-rs from crates.io with
default features, built by scripts/test into the same cache as ``nydus-image``) mounting a
Nydus image layout over FUSE, the way a user's runtime reads it.

The daemon reads the layout's blobs with its ``localfs`` backend (the blobs hard-linked by id
into a directory of the test's own) through a ``blobcache`` in another: what it fetched is then
visible in the cache's chunk map (``<blob id>.chunk_map``, a 4 KiB header and one bit per chunk
of the blob's chunk table) and the sparse ``<blob id>.blob.data`` (the blob's uncompressed data
at its offsets). IO amplification is off, so a read fetches the chunks it needs and nothing more.
Each mount waits a bounded time to appear and is unmounted, and its daemon stopped by its PID,
when the ``with`` block ends, whatever the block raised.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import snapshot
from tests.nydus_support import NYDUS_RS, ChunkPlace, blob_dir, bootstrap_bytes, check, nydus_manifest

NYDUSD = NYDUS_RS / "bin" / "nydusd"
MOUNT_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

#: nydusd 2.2.0's blob cache reads ahead, whatever the config says: fetching chunks, it goes on
#: with the chunks that follow them in the blob while they end within 1 MiB (on demand: the
#: fixed ``RAFS_DEFAULT_CHUNK_SIZE`` batch of ``FileCacheEntry``) or ``max(merging_size,
#: 128 KiB)`` (prefetch) of the start of the chunk the fetch began with.
ONDEMAND_WINDOW = 1 << 20
PREFETCH_WINDOW = 0x2_0000

_CHUNK_MAP_MAGIC = 0x424D_4150
_CHUNK_MAP_HEADER = 4096


def mounted(mountpoint: Path) -> str | None:
    """The filesystem type mounted at ``mountpoint`` (from /proc/self/mountinfo), or None."""
    want = os.path.realpath(mountpoint)
    found = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), left.split()[4])
        if point == want:
            found = right.split()[0]  # the last mount at a point is the visible one
    return found


def nydusd_config(blobs: Path, cache: Path, *, prefetch: bool) -> dict[str, Any]:
    """localfs backend on ``blobs``, blobcache in ``cache`` (RAFS v6 needs one and refuses
    digest_validate), xattrs served, no IO amplification; with ``prefetch``, the prefetch
    table's files only (``prefetch_all`` off)."""
    config: dict[str, Any] = {
        "device": {
            "backend": {"type": "localfs", "config": {"dir": str(blobs)}},
            "cache": {"type": "blobcache", "config": {"work_dir": str(cache)}},
        },
        "mode": "direct",
        "digest_validate": False,
        "enable_xattr": True,
        "amplify_io": 0,
    }
    if prefetch:
        config["fs_prefetch"] = {"enable": True, "threads_count": 2, "merging_size": 0, "prefetch_all": False}
    return config


def blob_chunks(blobs: Path, blob_id: str) -> dict[int, ChunkPlace]:
    """Every chunk of a layer blob by index, from the bootstrap inlined in the blob
    (``nydus-image check``; whited-out files' chunks are there too)."""
    report = check(blobs / blob_id, blobs)
    own = [b[0] for b in report.blobs].index(blob_id)
    return {p.index: p for f in report.files.values() for p in f.places if p.blob_index == own}


def read_ahead(table: dict[int, ChunkPlace], started: set[int], window: int) -> set[int]:
    """The chunks of a blob (``table``) that nydusd may fetch along with ``started``: each
    chunk after one of them that ends within ``window`` of its start."""
    return {
        i
        for i, c in table.items()
        for s in started
        if i > s
        and (
            c.compressed_offset + c.compressed_size <= table[s].compressed_offset + window
            or c.uncompressed_offset + c.uncompressed_size <= table[s].uncompressed_offset + window
        )
    }


@dataclass
class NydusMount:
    root: Path
    cache: Path
    blob_ids: list[str]
    """The image's blob ids, in the order of its bootstrap's blob table."""
    bootstrap: Path
    blobs: Path
    pid: int

    def ready_chunks(self, blob_id: str) -> set[int]:
        """Indexes of the chunks of ``blob_id`` the cache holds (its chunk map's set bits)."""
        path = self.cache / f"{blob_id}.chunk_map"
        if not path.exists():
            return set()
        data = path.read_bytes()
        assert int.from_bytes(data[:4], "little") == _CHUNK_MAP_MAGIC, f"{path}: not a chunk map"
        return {
            i * 8 + bit for i, byte in enumerate(data[_CHUNK_MAP_HEADER:]) for bit in range(8) if byte & (0x80 >> bit)
        }

    def cached_extents(self, blob_id: str) -> list[tuple[int, int]]:
        """(start, end) of the data regions of the cache's sparse copy of ``blob_id``."""
        path = self.cache / f"{blob_id}.blob.data"
        if not path.exists():
            return []
        extents = []
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            pos = 0
            while pos < size:
                try:
                    start = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError:  # ENXIO: no data after pos
                    break
                end = os.lseek(fd, start, os.SEEK_HOLE)
                extents.append((start, end))
                pos = end
        finally:
            os.close(fd)
        return extents

    def cached_size(self, blob_id: str) -> tuple[int, int]:
        """(bytes of data the cache's copy of ``blob_id`` holds, its full uncompressed size)."""
        path = self.cache / f"{blob_id}.blob.data"
        if not path.exists():
            return 0, 0
        return sum(end - start for start, end in self.cached_extents(blob_id)), path.stat().st_size


@contextmanager
def nydusd_mount(layout: Path, ref: str, work: Path, *, prefetch: bool = False) -> Iterator[NydusMount]:
    """Mount the Nydus image ``ref`` of ``layout`` with nydusd at ``work/mnt``."""
    assert NYDUSD.is_file(), f"{NYDUSD} is missing: run ./scripts/test, which builds it"
    manifest = nydus_manifest(layout, ref)
    work.mkdir(parents=True, exist_ok=True)
    blobs, ids = blob_dir(layout, manifest, work / "blobs")
    boot = work / "image.boot"
    boot.write_bytes(bootstrap_bytes(layout, manifest))
    cache, mnt = work / "cache", work / "mnt"
    cache.mkdir()
    mnt.mkdir()
    config = work / "nydusd.json"
    config.write_text(json.dumps(nydusd_config(blobs, cache, prefetch=prefetch)))
    log_path = work / "nydusd.log"
    # setpriv execs nydusd (the PID is the daemon's) with a SIGTERM due when the test process
    # dies: nydusd unmounts and exits on it.
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM", "--", NYDUSD, "--config", config, "--bootstrap", boot,
             "--mountpoint", mnt, "--rlimit-nofile", "10000", "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    body_failed = False
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while mounted(mnt) is None:
            assert proc.poll() is None, f"nydusd exited ({proc.returncode}):\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"nydusd did not mount {mnt} within {MOUNT_TIMEOUT}s"
            time.sleep(0.02)
        kind = mounted(mnt)
        assert kind is not None and kind.startswith("fuse"), f"{mnt} is a {kind} mount, not nydusd's FUSE"
        yield NydusMount(root=mnt, cache=cache, blob_ids=ids, bootstrap=boot, blobs=blobs, pid=proc.pid)
    except BaseException:
        body_failed = True
        raise
    finally:
        problems = _stop(proc, mnt)
        if problems and not body_failed:
            raise AssertionError(f"stopping nydusd: {'; '.join(problems)}\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen[bytes], mnt: Path) -> list[str]:
    """Unmount ``mnt`` and end ``proc`` (by its PID); a forced step is reported as a problem."""
    problems = []
    if mounted(mnt) is not None:
        um = subprocess.run(["umount", str(mnt)], capture_output=True, text=True, timeout=STOP_TIMEOUT, check=False)
        if um.returncode != 0:
            problems.append(f"umount {mnt}: {um.stderr.strip()}")
    elif proc.poll() is None:  # it never mounted: nothing would make it exit
        proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        problems.append(f"nydusd (pid {proc.pid}) still running {STOP_TIMEOUT}s after umount or SIGTERM: killed")
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
    if proc.returncode != 0 and not problems:
        problems.append(f"nydusd exited with {proc.returncode}")
    if mounted(mnt) is not None:  # a daemon that died leaves a dead FUSE mount behind
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=STOP_TIMEOUT, check=False)
        problems.append(f"{mnt} stayed mounted: lazily unmounted")
    assert mounted(mnt) is None, f"{mnt} is still mounted"
    return problems


def tree(root: Path) -> dict[str, Any]:
    """:func:`tests.helpers.snapshot` (types, modes, contents, symlink targets, devices, hard
    links) plus each entry's owner, size (files), mtime (all but directories) and xattrs."""
    snap = snapshot(root)
    meta = {}
    for rel in snap["entries"]:
        p = root / rel
        st = p.lstat()
        xattrs = {} if stat.S_ISLNK(st.st_mode) else {n: os.getxattr(p, n) for n in sorted(os.listxattr(p))}
        size = st.st_size if stat.S_ISREG(st.st_mode) else None
        mtime = None if stat.S_ISDIR(st.st_mode) else int(st.st_mtime)
        meta[rel] = (st.st_uid, st.st_gid, size, mtime, xattrs)
    snap["meta"] = meta
    return snap
