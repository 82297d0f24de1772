"""Where blobs already live on a registry, remembered between runs, so that pushing to a
second repository of the same registry can mount instead of uploading.

The file (``registry-blobs.json`` in the cache directory: registry -> digest -> repositories,
most recent first) is a cache: one that cannot be read, is not JSON, is too large or has
entries of the wrong shape is reported in one warning line and treated as empty (or those
entries dropped); it is replaced atomically when the push ends. Like every cache file it is
read and written only where no one else can write (:mod:`layerforge.trust.cache_files`): it
decides which repositories a push asks the registry to mount blobs from.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.layout.atomic import atomic_write
from layerforge.model.canonical_json import canonical_json
from layerforge.registry.reference import is_digest, valid_repository
from layerforge.trust import cache_files
from layerforge.trust.blobs import read_document
from layerforge.trust.origins import valid_registry
from layerforge.trust.text import shown

log = logging.getLogger("layerforge.registry")

MAX_REPOS_PER_BLOB = 8
MAX_FILE = 64 << 20
WHAT = "the known-blobs cache"

Known = dict[str, dict[str, list[str]]]


def _valid_entries(loaded: object) -> tuple[Known, int]:
    """The well-formed part of a loaded file, and how many entries were dropped."""
    if not isinstance(loaded, dict):
        return {}, 1
    out: Known = {}
    dropped = 0
    for registry, blobs in loaded.items():
        if not (isinstance(registry, str) and valid_registry(registry) and isinstance(blobs, dict)):
            dropped += 1
            continue
        kept = out.setdefault(registry, {})
        for digest, repos in blobs.items():
            if not (isinstance(digest, str) and is_digest(digest) and isinstance(repos, list)):
                dropped += 1
                continue
            good = [r for r in repos if isinstance(r, str) and valid_repository(r)][:MAX_REPOS_PER_BLOB]
            dropped += len(repos) != len(good)
            if good:
                kept[digest] = list(dict.fromkeys(good))
    return out, dropped


class KnownBlobs:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: Known = {}
        if path is not None:
            self._data = self._load(path)

    @staticmethod
    def _load(path: Path) -> Known:
        if path.exists() and not cache_files.usable(path.parent, path, WHAT):
            return {}
        try:
            data = read_document(path, "known-blobs cache", limit=MAX_FILE, follow=True)
        except LayerforgeError as e:
            if path.exists() or path.is_symlink():
                log.warning("warning: ignoring the known-blobs cache: %s", shown(e))
            return {}
        try:
            loaded = json.loads(data)
        except (ValueError, RecursionError):
            log.warning("warning: ignoring the known-blobs cache '%s': it is not valid JSON", shown(path))
            return {}
        known, dropped = _valid_entries(loaded)
        if dropped:
            log.warning("warning: known-blobs cache '%s': ignoring %d malformed entries", shown(path), dropped)
        return known

    def find(self, registry: str, digest: str, exclude: str) -> str | None:
        with self._lock:
            repos = self._data.get(registry, {}).get(digest, [])
            return next((r for r in repos if r != exclude), None)

    def note(self, registry: str, repo: str, digest: str) -> None:
        """Record that ``repo`` holds ``digest`` (a blob found there): listed first if it was
        not listed, left where it is if it was, so a re-push with nothing to send leaves the
        file as it is (which the native command relies on)."""
        with self._lock:
            if repo not in self._data.get(registry, {}).get(digest, []):
                self._first(registry, repo, digest)

    def add(self, registry: str, repo: str, digest: str) -> None:
        """Record ``repo`` as the most recent holder of ``digest`` (it was sent or mounted there)."""
        with self._lock:
            self._first(registry, repo, digest)

    def _first(self, registry: str, repo: str, digest: str) -> None:
        repos = self._data.setdefault(registry, {}).setdefault(digest, [])
        if repo in repos:
            repos.remove(repo)
        repos.insert(0, repo)
        del repos[MAX_REPOS_PER_BLOB:]

    def save(self) -> None:
        if self.path is None:
            return
        if not cache_files.private_dir(self.path.parent, self.path.parent, WHAT):
            return
        with self._lock:
            try:
                atomic_write(self.path, canonical_json(self._data), mode=cache_files.FILE_MODE)
            except OSError as e:  # a cache: the push itself succeeded
                log.warning("warning: cannot save the known-blobs cache '%s': %s", shown(self.path), shown(e))
