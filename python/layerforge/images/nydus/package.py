"""OCI packaging of a converted image: blob layers, the bootstrap layer (gzip'd tar holding
``image/image.boot``), config, manifest and, with --merge-platform, an index holding the
original manifest beside the Nydus one."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from layerforge._native import LayerSpec
from layerforge.images.nydus.constants import (
    ANNOTATION_BLOB,
    ANNOTATION_BOOTSTRAP,
    ANNOTATION_FS_VERSION,
    BLOB_MEDIA_TYPE,
    BOOTSTRAP_DIR,
    BOOTSTRAP_PATH,
    FS_VERSION,
    MANIFEST_ARTIFACT_TYPE,
    OS_FEATURE,
)
from layerforge.layers.build import BuiltLayer, build_layers
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.epoch import rfc3339
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform


def blob_descriptor(digest: str, size: int) -> Descriptor:
    return Descriptor(media_type=BLOB_MEDIA_TYPE, digest=digest, size=size, annotations={ANNOTATION_BLOB: "true"})


def bootstrap_layer(layout: OciLayout, bootstrap: bytes, threads: int = 0) -> BuiltLayer:
    """The bootstrap layer: dir ``image`` (0755) and ``image/image.boot`` (0444), mtime 0, gzip."""
    spec = LayerSpec(mtime=0)
    spec.add_dir(BOOTSTRAP_DIR, 0o755)
    spec.add_file(BOOTSTRAP_PATH, bootstrap, 0o444)
    (built,) = build_layers(layout, [spec], compression="gzip", threads=threads)
    annotations = {ANNOTATION_BOOTSTRAP: "true", ANNOTATION_FS_VERSION: FS_VERSION}
    return replace(built, descriptor=built.descriptor.with_annotations(annotations))


def nydus_config(source: dict[str, Any], blobs: Sequence[Descriptor], boot: BuiltLayer, epoch: int) -> dict[str, Any]:
    """The source config with the Nydus layers' diff_ids (a blob's diff_id is its digest)
    and a history entry for the bootstrap layer; everything else is kept as it was."""
    config = copy.deepcopy(source)
    config["rootfs"] = {"type": "layers", "diff_ids": [b.digest for b in blobs] + [boot.diff_id]}
    history = list(config.get("history") or [])
    history.append(
        {"created": rfc3339(epoch), "created_by": "layerforge nydus-image", "comment": "Nydus Bootstrap Layer"}
    )
    config["history"] = history
    return config


def with_nydus_feature(platform: Platform | None) -> Platform | None:
    if platform is None:
        return None
    return replace(platform, os_features=(*(f for f in platform.os_features if f != OS_FEATURE), OS_FEATURE))


def write_nydus_manifest(
    layout: OciLayout,
    config: dict[str, Any],
    layers: Sequence[Descriptor],
    annotations: dict[str, str],
    platform: Platform | None,
) -> Descriptor:
    config_desc = layout.put_json(config, media_types.IMAGE_CONFIG)
    manifest = Manifest(config=config_desc, layers=tuple(layers), annotations=annotations)
    desc = layout.put_json(manifest.to_json(), media_types.IMAGE_MANIFEST)
    return replace(desc, platform=with_nydus_feature(platform), artifact_type=MANIFEST_ARTIFACT_TYPE)


def merged_platform_index(layout: OciLayout, original: Descriptor, nydus: Descriptor) -> Descriptor:
    """An index of the original manifest then the Nydus one (nydusify --merge-platform)."""
    index = Index(manifests=(original, nydus))
    return layout.put_json(index.to_json(), media_types.IMAGE_INDEX)
