"""A docker-archive's layer members written by the native core (:func:`build_into_archive`),
and the refusal of an executable built for another machine, which the layer builds of
:mod:`layerforge.layers.build` share. The only caller of ``_native.write_layer_members``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError
from layerforge.option_flags import check_threads
from layerforge.progress import ProgressCallback

#: How the native core's refusal of an executable for another machine begins its reason.
_FOREIGN = " is an ELF executable for "
#: What lets such executables in, for the CLI and the Pants field.
FOREIGN_OPT_OUT = "--allow-foreign-executables (Pants: allow_foreign_executables=True) lets it in"


class ForeignExecutableError(LayerforgeError):
    """An executable of a layer was built for another machine than the image's."""


def foreign_or(e: _native.InputError, machine: str | None) -> Exception:
    """A refused foreign executable as :class:`ForeignExecutableError`, else ``e``."""
    if machine is not None and _FOREIGN in str(e):
        return ForeignExecutableError(f"{e}; {FOREIGN_OPT_OUT}")
    return e


def build_into_archive(
    dest: Path,
    layers: Sequence[LayerSpec | tuple[Path, int, str, str]],
    *,
    mtime: int,
    threads: int = 0,
    machine: str | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[list[tuple[str, int, bool]], int]:
    """A docker-archive's layer members written into ``dest`` from its start (see
    ``_native.write_layer_members``): a spec is built straight into it as a plain tar, a
    ``(path, size, diff_id, what)`` is a layer tar file copied and verified. Returns
    ``([(diff_id, size, written)], end offset)``."""
    check_threads(threads)
    try:
        return _native.write_layer_members(
            dest, list(layers), mtime=mtime, threads=threads, machine=machine, progress=progress
        )
    except _native.InputError as e:
        raise foreign_or(e, machine) from None
