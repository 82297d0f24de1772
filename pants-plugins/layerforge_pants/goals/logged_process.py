"""A long process that says when it finished: Pants shows only a spinner while a process
runs and nothing when it ends, so a layer job of many seconds was silent. A logged process runs
through its own rule (`logged_process_rules.py`), which the engine runs once per identical
process in a run, whichever images ask for it, and which logs one line when the process ran
(not when a cache answered it): its description, the bytes of its output files and its time."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.fs import DigestEntries, FileEntry
from pants.engine.process import FallibleProcessResult, Process


@dataclass(frozen=True)
class LoggedProcess:
    process: Process


@dataclass(frozen=True)
class LoggedResult:
    result: FallibleProcessResult


def size_text(n: int) -> str:
    """``n`` bytes, in KiB below a MiB, else MiB."""
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.1f} MiB"


def finished_line(description: str, outputs: DigestEntries, elapsed_ms: int | None) -> str:
    """The line a process that ran logs: what it did, its output files' bytes, its time."""
    size = sum(e.file_digest.serialized_bytes_length for e in outputs if isinstance(e, FileEntry))
    took = f" in {elapsed_ms / 1000:.1f} s" if elapsed_ms is not None else ""
    return f"{description}: {size_text(size)}{took}"
