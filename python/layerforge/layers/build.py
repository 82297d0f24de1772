"""Turn :class:`LayerSpec`s into layer blobs inside a layout, in one native pass each, into
one archive outside a layout (:func:`build_archive`), or into a docker-archive's members
(:func:`layerforge.layout.layer_members.build_into_archive`, beneath this module). These two
modules are the one door to the native layer builds: nothing else calls ``_native.build_layers``
or ``_native.write_layer_members``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.layout.layer_members import foreign_or
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex
from layerforge.option_flags import check_threads, checked, checked_level, choices, default
from layerforge.progress import ProgressCallback

COMPRESSIONS = choices("layer.compression")
DEFAULT_COMPRESSION = str(default("layer.compression"))
assert set(COMPRESSIONS) == set(media_types.LAYER_BY_COMPRESSION)


@dataclass(frozen=True)
class BuiltLayer:
    descriptor: Descriptor
    diff_id: str
    uncompressed_size: int


def build_layers(
    layout: OciLayout,
    specs: Sequence[LayerSpec],
    *,
    compression: str = DEFAULT_COMPRESSION,
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
        raise foreign_or(e, machine) from None
    media_type = media_types.LAYER_BY_COMPRESSION[compression]
    return [
        BuiltLayer(
            descriptor=Descriptor(media_type=media_type, digest=r.digest, size=r.size),
            diff_id=r.diff_id,
            uncompressed_size=r.uncompressed_size,
        )
        for r in results
    ]


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
