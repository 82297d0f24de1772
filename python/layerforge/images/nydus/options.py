"""What a conversion is asked to do, validated with errors that name the option."""

from __future__ import annotations

from dataclasses import dataclass

from layerforge.option_flags import check_threads, checked, default


@dataclass(frozen=True)
class NydusRequest:
    ref: str | None = None
    chunk_size: int = int(default("nydus.chunk_size"))
    compressor: str = str(default("nydus.compressor"))
    digester: str = str(default("nydus.digester"))
    chunk_dict: str | None = None
    #: Absolute paths for the prefetch table; nydusify's default is the whole image ("/").
    prefetch: tuple[str, ...] = (str(default("nydus.prefetch")),)
    merge_platform: bool = False
    platform: str | None = None
    threads: int = int(default("layer.threads"))
    #: Reference chunks that lower layers store instead of storing them again.
    dedup_lower: bool = True

    def validate(self) -> NydusRequest:
        checked("--chunk-size", "nydus.chunk_size", self.chunk_size)
        check_threads(self.threads)
        checked("--compressor", "nydus.compressor", self.compressor)
        checked("--digester", "nydus.digester", self.digester)
        for p in self.prefetch:
            checked("--prefetch", "nydus.prefetch", p)
        return self


def parse_chunk_size(value: str) -> int:
    """``0x100000`` (as nydus-image takes it), ``1048576``, ``1MiB``, ``64K``."""
    return int(checked("--chunk-size", "nydus.chunk_size", value))
