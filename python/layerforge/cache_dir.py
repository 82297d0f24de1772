"""Where layerforge keeps reusable state (layer cache, known registry blobs)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$LAYERFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/layerforge``, else ``~/.cache/layerforge``."""
    if os.environ.get("LAYERFORGE_CACHE_DIR"):
        return Path(os.environ["LAYERFORGE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerforge"
