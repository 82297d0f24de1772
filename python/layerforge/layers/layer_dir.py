"""A layer built by a process of its own (one Pants process per layer or batch of layers): a
directory holding the blob under ``blobs/sha256/<hex>`` and ``layer.json`` describing it (descriptor,
diff_id, uncompressed size, annotations), ready to be merged into a layout by the assembly step;
and ``contents.json``, what the layer holds as a build record lists it (store paths, files:
layerforge.record.build.layer_contents), so that recording an image of the layer reads no blob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.layers.build import BuiltLayer
from layerforge.layout.atomic import atomic_write
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor

LAYER_JSON = "layer.json"
#: What the layer holds (see the module's docstring); rust/layerforge-cli/src/nix_layer.rs
#: writes the same for the layers it builds.
CONTENTS_JSON = "contents.json"


def layer_dir_store(path: Path) -> OciLayout:
    """The blob store of a layer directory (a layout-shaped directory without an index)."""
    return OciLayout(path)


def write_layer_dir(path: Path, layer: BuiltLayer) -> None:
    doc = {
        "descriptor": layer.descriptor.to_json(),
        "diffId": layer.diff_id,
        "uncompressedSize": layer.uncompressed_size,
    }
    atomic_write(path / LAYER_JSON, canonical_json(doc))


def write_layer_contents(path: Path, contents: dict[str, Any]) -> None:
    atomic_write(path / CONTENTS_JSON, canonical_json(contents))


def read_layer_dir(path: Path, *, blob: bool = True) -> BuiltLayer:
    """The layer of the layer directory ``path``; its blob must be there unless ``blob`` is
    false (the directory's layer.json alone)."""
    try:
        doc = json.loads((path / LAYER_JSON).read_bytes())
        layer = BuiltLayer(
            descriptor=Descriptor.from_json(doc["descriptor"], str(path / LAYER_JSON)),
            diff_id=str(doc["diffId"]),
            uncompressed_size=int(doc["uncompressedSize"]),
        )
    except (OSError, ValueError, KeyError) as e:
        raise LayerforgeError(f"'{path}' is not a layer directory ({LAYER_JSON}: {e})") from None
    if blob and not layer_dir_store(path).has_blob(layer.descriptor.digest):
        raise LayerforgeError(f"'{path}': blob {layer.descriptor.digest} is missing")
    return layer
