"""Turn :class:`LayerSpec`s into layer blobs inside a layout, in one native pass each, into
one archive outside a layout (:func:`build_archive`), or into a docker-archive's members
(:func:`build_into_archive`). The one door to the native layer builds: nothing else calls
``_native.build_layers`` or ``_native.write_layer_members``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.errors import LayerforgeError
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex
from layerforge.option_flags import checked, checked_level, choices
from layerforge.progress import ProgressCallback

COMPRESSIONS = choices("layer.compression")
assert set(COMPRESSIONS) == set(media_types.LAYER_BY_COMPRESSION)


def check_threads(threads: int) -> int:
    return int(checked("--threads", "layer.threads", threads))


#: How the native core's refusal of an executable for another machine begins its reason.
_FOREIGN = " is an ELF executable for "
#: What lets such executables in, for the CLI and the Pants field.
FOREIGN_OPT_OUT = "--allow-foreign-executables (Pants: allow_foreign_executables=True) lets it in"


class ForeignExecutableError(LayerforgeError):
    """An executable of a layer was built for another machine than the image's."""


@dataclass(frozen=True)
class BuiltLayer:
    descriptor: Descriptor
    diff_id: str
    uncompressed_size: int


def build_layers(
    layout: OciLayout,
    specs: Sequence[LayerSpec],
    *,
    compression: str = "gzip",
    level: int | None = None,
    threads: int = 0,
    machine: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[BuiltLayer]:
    """Build every spec into ``layout``'s blob store (concurrently), in order. With ``machine``
    (an OCI architecture), an executable or shared object built for another machine is an
    error naming it, found while its file is read (its ELF header)."""
    check_threads(threads)
    checked("--compression", "layer.compression", compression)
    checked_level("--level", compression, level)
    try:
        results = _native.build_layers(
            list(specs),
            layout.blob_dir,
            layout.tmp_dir,
            compression=compression,
            level=level,
            threads=threads,
            machine=machine,
            progress=progress,
        )
    except _native.InputError as e:
        raise _foreign_or(e, machine) from None
    media_type = media_types.LAYER_BY_COMPRESSION[compression]
    return [
        BuiltLayer(
            descriptor=Descriptor(media_type=media_type, digest=r.digest, size=r.size),
            diff_id=r.diff_id,
            uncompressed_size=r.uncompressed_size,
        )
        for r in results
    ]


def _foreign_or(e: _native.InputError, machine: str | None) -> Exception:
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
        raise _foreign_or(e, machine) from None


def build_archive(
    spec: LayerSpec,
    blob_dir: Path,
    tmp_dir: Path,
    *,
    format: str = "tar",
    compression: str = "none",
    progress: ProgressCallback | None = None,
) -> Path:
    """Build one archive of ``spec`` (a tar, or with ``format="cpio"`` a newc cpio) into
    ``blob_dir``, named by its digest; its path. For archives that are not layers of a
    layout (an initrd, an OCI archive)."""
    (result,) = _native.build_layers(
        [spec], blob_dir, tmp_dir, format=format, compression=compression, progress=progress
    )
    return blob_dir / digest_hex(result.digest)
