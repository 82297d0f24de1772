"""Assembling an image (config + manifest) from built layers and tagging it in a layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.manifest import Manifest


@dataclass(frozen=True)
class ImageResult:
    """What a build produced: the tagged manifest and where it lives."""

    layout: OciLayout
    ref: str
    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]


def write_image(
    layout: OciLayout,
    config: ImageConfig,
    layers: Sequence[Descriptor],
    *,
    annotations: dict[str, str],
    ref: str,
    added_later: frozenset[str] = frozenset(),
) -> ImageResult:
    """Store the config and manifest blobs (layer blobs must already be there, but for the
    digests ``added_later``, which the caller puts there), then point ``ref`` at the manifest.
    index.json changes last, so a failure leaves the old image. A shallow layout may lack
    layer blobs (a shallow base's)."""
    shallow = bool(layout.shallow_sources())
    for layer in layers:
        if not layout.has_blob(layer.digest) and not shallow and layer.digest not in added_later:
            raise AssertionError(f"layer blob {layer.digest} missing before manifest write")
    if len(config.diff_ids) != len(layers):
        raise AssertionError("diff_ids and layers differ in length")
    config_desc = layout.put_json(config.to_json(), media_types.IMAGE_CONFIG)
    manifest = Manifest(config=config_desc, layers=tuple(layers), annotations=annotations)
    manifest_desc = layout.put_json(manifest.to_json(), media_types.IMAGE_MANIFEST)
    tagged = Descriptor(
        media_type=manifest_desc.media_type,
        digest=manifest_desc.digest,
        size=manifest_desc.size,
        platform=config.platform,
    )
    layout.tag(tagged, ref)
    return ImageResult(layout=layout, ref=ref, manifest=tagged, config=config_desc, layers=tuple(layers))
