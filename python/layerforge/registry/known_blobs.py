"""Where blobs already live on a registry, remembered between runs, so that pushing to a
second repository of the same registry can mount instead of uploading."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from layerforge.layout.atomic import atomic_write
from layerforge.model.canonical_json import canonical_json

MAX_REPOS_PER_BLOB = 8


class KnownBlobs:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, list[str]]] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_bytes())
                if isinstance(loaded, dict):
                    self._data = loaded
            except (OSError, ValueError):
                self._data = {}

    def find(self, registry: str, digest: str, exclude: str) -> str | None:
        with self._lock:
            repos = self._data.get(registry, {}).get(digest, [])
            return next((r for r in repos if r != exclude), None)

    def add(self, registry: str, repo: str, digest: str) -> None:
        with self._lock:
            repos = self._data.setdefault(registry, {}).setdefault(digest, [])
            if repo in repos:
                repos.remove(repo)
            repos.insert(0, repo)
            del repos[MAX_REPOS_PER_BLOB:]

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            atomic_write(self.path, canonical_json(self._data))
