"""Convert an OCI image in a layout into a Nydus image in another (or the same) layout.

The native core does the work (layers scanned concurrently, chunks digested and compressed
across cores, lower-layer and chunk-dictionary deduplication, per-layer blobs and the merged
RAFS v6 bootstrap); this module reads the source image, resolves the chunk dictionary and
packages the result as OCI. Bad input leaves no partial output (see ``open_for_write``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from layerforge import _native
from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nydus.chunk_dict import ChunkDict, open_chunk_dict
from layerforge.images.nydus.constants import ANNOTATION_BLOB, BLOB_MEDIA_TYPE
from layerforge.images.nydus.options import NydusRequest
from layerforge.images.nydus.package import (
    blob_descriptor,
    bootstrap_layer,
    merged_platform_index,
    nydus_config,
    write_nydus_manifest,
)
from layerforge.layout.image_reader import StoredImage, import_blobs, index_manifests, read_image
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.epoch import source_date_epoch
from layerforge.model.index import Index
from layerforge.model.reference import DEFAULT_TAG, LayoutRef, validate_ref
from layerforge.progress import ProgressCallback
from layerforge.trust.blobs import import_blob

#: Layer media types the converter reads (compression is detected from the bytes).
SOURCE_LAYER_TYPES = frozenset(
    {
        media_types.LAYER_TAR,
        media_types.LAYER_TAR_GZIP,
        media_types.LAYER_TAR_ZSTD,
        media_types.DOCKER_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar",
    }
)


@dataclass(frozen=True)
class LayerStats:
    source: Descriptor
    blob: Descriptor | None
    chunks: int
    file_bytes: int
    dup_bytes: int
    lower_bytes: int
    dict_bytes: int


@dataclass(frozen=True)
class NydusImageResult:
    layout: OciLayout
    ref: str
    #: What the ref points at: the Nydus manifest, or the --merge-platform index.
    tagged: Descriptor
    manifest: Descriptor
    blobs: tuple[Descriptor, ...]
    bootstrap: Descriptor
    layers: tuple[LayerStats, ...]
    #: Compressed bytes of chunks the dictionary already had (not stored again).
    dict_saved_bytes: int

    @property
    def new_blob_bytes(self) -> int:
        """Bytes of the blobs this conversion wrote (dictionary blobs excluded)."""
        return sum(s.blob.size for s in self.layers if s.blob is not None)


@dataclass(frozen=True)
class NydusIndexResult:
    """An index converted platform by platform: its entries are each platform's Nydus
    manifest (with ``--merge-platform``, the original manifest, then the Nydus one)."""

    layout: OciLayout
    ref: str
    tagged: Descriptor
    platforms: tuple[NydusImageResult, ...]


def convert_nydus_image(
    source: LayoutRef,
    out: Path,
    req: NydusRequest,
    *,
    epoch: int | None = None,
    progress: ProgressCallback | None = None,
) -> NydusImageResult | NydusIndexResult:
    """Convert one image; an index without ``req.platform`` is converted platform by
    platform into an index of the Nydus images."""
    req.validate()
    ref = validate_ref(req.ref or source.ref or DEFAULT_TAG)
    epoch = source_date_epoch() if epoch is None else epoch
    images, whole_index = _source_images(source, req.platform)
    for image in images:
        _check_keeps_source_tag(image, source, out, ref)
        _check_source_layers(image)
    with contextlib.ExitStack() as stack:
        chunk_dict = stack.enter_context(open_chunk_dict(req.chunk_dict)) if req.chunk_dict else None
        layout = stack.enter_context(open_for_write(out))
        results = [
            _convert(image, layout=layout, req=req, epoch=epoch, chunk_dict=chunk_dict, progress=progress)
            for image in images
        ]
        if not whole_index:
            (result,) = results
            tagged = result.manifest
            if req.merge_platform:
                tagged = merged_platform_index(layout, _original(images[0]), result.manifest)
            layout.tag(tagged, ref)
            return replace(result, ref=ref, tagged=tagged)
        entries: list[Descriptor] = []
        for image, result in zip(images, results):
            entries += [_original(image), result.manifest] if req.merge_platform else [result.manifest]
        index = layout.put_json(Index(manifests=tuple(entries)).to_json(), media_types.IMAGE_INDEX)
        layout.tag(index, ref)
        return NydusIndexResult(layout, ref, index, tuple(replace(r, ref=ref, tagged=index) for r in results))


def _source_images(source: LayoutRef, platform: str | None) -> tuple[list[StoredImage], bool]:
    """The image ``platform`` picks or the image a manifest is (False); or every platform
    image of an index (True), as :class:`StoredImage` s whose ``ref`` is None."""
    layout = OciLayout.open(source.path)
    entry = layout.resolve(source.ref)
    if platform is not None or entry.media_type not in media_types.INDEX_TYPES:
        return [read_image(source, platform)], False
    images = []
    for desc in index_manifests(layout, entry):
        manifest = layout.read_manifest(desc)
        if manifest.config.media_type not in media_types.IMAGE_CONFIG_TYPES:
            continue  # an artifact (an SBOM, an attestation), not a platform's image
        config = layout.read_config(manifest)
        if len(config.diff_ids) != len(manifest.layers):
            counts = f"{len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers"
            raise LayerforgeError(f"{source}: {desc.digest}: config lists {counts}")
        images.append(StoredImage(layout=layout, ref=None, descriptor=desc, manifest=manifest, config=config))
    if not images:
        raise LayerforgeError(f"{source} is an index without images")
    return images, True


def _original(image: StoredImage) -> Descriptor:
    """The source manifest as an index entry next to its Nydus one (``--merge-platform``)."""
    return Descriptor(
        media_type=image.descriptor.media_type,
        digest=image.descriptor.digest,
        size=image.descriptor.size,
        platform=image.descriptor.platform or image.config.platform,
    )


def _check_keeps_source_tag(image: StoredImage, source: LayoutRef, out: Path, ref: str) -> None:
    """Converting into the source layout must not re-point the tag that names the source
    image (as nydusify, the Nydus image gets a tag of its own and the source keeps its)."""
    if not (out / "oci-layout").is_file() or not os.path.samefile(out, image.layout.root):
        return
    tagged = image.layout.read_index().find(ref)
    if tagged is not None and tagged.digest == image.layout.resolve(source.ref).digest:
        raise UsageError(
            "--tag",
            f"{ref!r} names the source image in '{out}'; converting in place needs a new tag "
            f"(e.g. --tag {ref}-nydus), so that the source keeps its own",
        )


def _check_source_layers(image: StoredImage) -> None:
    for i, layer in enumerate(image.manifest.layers, 1):
        if layer.media_type == BLOB_MEDIA_TYPE or ANNOTATION_BLOB in layer.annotations:
            raise LayerforgeError(f"{image.layout.root}: layer {i} ({layer.digest}) is already a Nydus blob")
        if layer.media_type not in SOURCE_LAYER_TYPES:
            raise LayerforgeError(
                f"{image.layout.root}: layer {i} ({layer.digest}) has media type {layer.media_type!r}, "
                "not a tar layer (tar, tar+gzip or tar+zstd)"
            )
        if not image.layout.has_blob(layer.digest):
            raise LayerforgeError(f"{image.layout.root}: layer {i} blob {layer.digest} is missing")


def _convert(
    image: StoredImage,
    *,
    layout: OciLayout,
    req: NydusRequest,
    epoch: int,
    chunk_dict: ChunkDict | None,
    progress: ProgressCallback | None,
) -> NydusImageResult:
    sources = image.manifest.layers
    for i, layer in enumerate(sources, 1):
        image.layout.require_blob(layer.digest, f"layer {i} ({layer.digest})")
    result = _native.convert_nydus(
        [
            (image.layout.blob_path(layer.digest), layer.digest, layer.size, diff_id, f"layer {i} ({layer.digest})")
            for i, (layer, diff_id) in enumerate(zip(sources, image.config.diff_ids), 1)
        ],
        layout.blob_dir,
        layout.tmp_dir,
        chunk_size=req.chunk_size,
        compressor=req.compressor,
        digester=req.digester,
        chunk_dict=chunk_dict.bootstrap if chunk_dict else None,
        prefetch=list(req.prefetch),
        dedup_lower=req.dedup_lower,
        threads=req.threads,
        progress=progress,
    )
    blobs: list[Descriptor] = []
    for b in result.blobs:
        if b.dict is not None:
            if chunk_dict is None:
                raise AssertionError("dictionary blob without a dictionary")
            src = chunk_dict.blob_file(b.digest)
            size = chunk_dict.sizes.get(b.digest)
            if not layout.has_blob(b.digest):
                what = f"--chunk-dict blob {b.digest}"
                import_blob(src, layout.blob_path(b.digest), b.digest, size, layout.tmp_dir, what=what)
            blobs.append(blob_descriptor(b.digest, size if size is not None else src.stat().st_size))
        else:
            if b.size is None:
                raise AssertionError("converted blob without a size")
            blobs.append(blob_descriptor(b.digest, b.size))
    boot = bootstrap_layer(layout, result.bootstrap, req.threads)
    # The raw config (read_image parsed and checked it), so fields the model does not know survive.
    config = nydus_config(image.layout.read_json(image.manifest.config), blobs, boot, epoch)
    platform = image.descriptor.platform or image.config.platform
    manifest = write_nydus_manifest(
        layout, config, [*blobs, boot.descriptor], dict(image.manifest.annotations), platform
    )
    if req.merge_platform:
        import_blobs(image.layout, layout, [image.descriptor, image.manifest.config, *sources])
    layers = tuple(
        LayerStats(
            source=src,
            blob=blob_descriptor(r.blob_digest, r.blob_size)
            if r.blob_digest is not None and r.blob_size is not None
            else None,
            chunks=r.chunks,
            file_bytes=r.file_bytes,
            dup_bytes=r.dup_bytes,
            lower_bytes=r.lower_bytes,
            dict_bytes=r.dict_bytes,
        )
        for src, r in zip(sources, result.layers)
    )
    return NydusImageResult(
        layout=layout,
        ref="",
        tagged=manifest,
        manifest=manifest,
        blobs=tuple(blobs),
        bootstrap=boot.descriptor,
        layers=layers,
        dict_saved_bytes=result.dict_saved_bytes,
    )
