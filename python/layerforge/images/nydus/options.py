"""What a conversion is asked to do, validated with errors that name the option."""

from __future__ import annotations

from dataclasses import dataclass

from layerforge.errors import UsageError
from layerforge.images.nydus.constants import (
    COMPRESSORS,
    DEFAULT_CHUNK_SIZE,
    DIGESTERS,
    MAX_CHUNK_SIZE,
    MAX_THREADS,
    MIN_CHUNK_SIZE,
)
from layerforge.units import parse_size


@dataclass(frozen=True)
class NydusRequest:
    ref: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    compressor: str = "zstd"
    digester: str = "blake3"
    chunk_dict: str | None = None
    #: Absolute paths for the prefetch table; nydusify's default is the whole image ("/").
    prefetch: tuple[str, ...] = ("/",)
    merge_platform: bool = False
    platform: str | None = None
    threads: int = 0
    #: Reference chunks that lower layers store instead of storing them again.
    dedup_lower: bool = True

    def validate(self) -> NydusRequest:
        check_chunk_size(self.chunk_size)
        if not 0 <= self.threads <= MAX_THREADS:
            raise UsageError("--threads", f"{self.threads} is not between 0 (one per core) and {MAX_THREADS}")
        if self.compressor not in COMPRESSORS:
            raise UsageError("--compressor", f"{self.compressor!r} is not one of {', '.join(COMPRESSORS)}")
        if self.digester not in DIGESTERS:
            raise UsageError("--digester", f"{self.digester!r} is not one of {', '.join(DIGESTERS)}")
        for p in self.prefetch:
            if not p.startswith("/"):
                raise UsageError("--prefetch", f"{p!r} is not an absolute path")
            if ".." in p.split("/"):
                raise UsageError("--prefetch", f"{p!r} contains '..'")
        return self


def check_chunk_size(size: int) -> int:
    if not MIN_CHUNK_SIZE <= size <= MAX_CHUNK_SIZE or size & (size - 1):
        raise UsageError("--chunk-size", f"{size} is not a power of two between 4096 (4 KiB) and 16777216 (16 MiB)")
    return size


def parse_chunk_size(value: str) -> int:
    """``0x100000`` (as nydus-image takes it), ``1048576``, ``1MiB``, ``64K``."""
    text = value.strip().lower()
    if text.startswith("0x"):
        try:
            size = int(text, 16)
        except ValueError:
            raise UsageError("--chunk-size", f"{value!r} is not a size like 0x100000 or 1MiB") from None
    else:
        size = parse_size(value, "--chunk-size")
    return check_chunk_size(size)
