"""The build record (``<output>.layerforge.json``, schema ``build-record.v1.json``): what a
layout holds for one reference. Per image: its manifest digest, platform, config, and each
layer's digest, diff_id, size and what it holds (the Nix store paths, and the other files,
by path); for an index, its entries; and the referrers (SBOMs, signatures) the layout lists
for them. Read from the layout alone, so any layout (built, pulled) can be recorded."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from layerforge.errors import LayoutError
from layerforge.layout.image_reader import MAX_INDEX_DEPTH
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.layout.whiteouts import classify
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.repo_tags import IMAGE_NAME
from layerforge.trust.tars import check_complete, reading_tar

SCHEMA = "https://layerforge.dev/schemas/build-record.v1.json"
VERSION = 1
#: Paths listed per layer at most (``filesTruncated`` says when a layer holds more).
MAX_FILES = 10000
_TAR_LAYERS = frozenset(media_types.LAYER_BY_COMPRESSION.values()) | {
    media_types.DOCKER_LAYER_GZIP,
    media_types.DOCKER_LAYER_TAR,
}
_STORE = "nix/store/"


def build_record(
    layout: OciLayout,
    ref: str | None,
    *,
    repository: str | None = None,
    tags: Sequence[str] = (),
    output: str | None = None,
    files: bool = True,
    listed: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The record of ``ref`` (or the layout's only image) in ``layout``; ``files`` false
    leaves out what each layer holds (no layer is read). ``listed`` gives what layers hold by
    their digest (:func:`layer_contents` of each, as ``nix-layer`` writes it beside the layer):
    those layers are not read, and the layout may lack their blobs."""
    entry = layout.resolve(ref)
    index = layout.read_index()
    subjects: dict[str, list[dict[str, Any]]] = {}
    for m in index.manifests:
        if m.artifact_type and m.media_type in media_types.MANIFEST_TYPES:
            subject = layout.read_manifest(m).subject
            if subject is not None:
                subjects.setdefault(subject.digest, []).append(
                    {"digest": m.digest, "mediaType": m.media_type, "size": m.size, "artifactType": m.artifact_type}
                )
    record: dict[str, Any] = {
        "$schema": SCHEMA,
        "schemaVersion": VERSION,
        "kind": "build",
        "output": output or str(layout.root),
        "ref": entry.annotations.get("org.opencontainers.image.ref.name", ref),
        "repository": repository,
        "tags": list(tags),
        "imageName": entry.annotations.get(IMAGE_NAME),
        "digest": entry.digest,
        "mediaType": entry.media_type,
        "size": entry.size,
        "images": [],
        "index": None,
    }
    with scratch_dir(Path(tempfile.gettempdir()), "record") as tmp:
        if entry.media_type in media_types.INDEX_TYPES:
            nested = layout.read_nested_index(entry)
            record["index"] = {
                "entries": [_entry(m) for m in nested.manifests],
                "annotations": dict(nested.annotations),
            }
            for m in _manifests(layout, entry, 0):
                record["images"].append(_image(layout, m, subjects, tmp, files=files, known=listed or {}))
        else:
            record["images"].append(_image(layout, entry, subjects, tmp, files=files, known=listed or {}))
    record["referrers"] = subjects.get(entry.digest, [])
    return record


def _entry(m: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"digest": m.digest, "mediaType": m.media_type, "size": m.size}
    out["platform"] = m.platform.to_json() if m.platform else None
    if m.artifact_type:
        out["artifactType"] = m.artifact_type
    return out


def _manifests(layout: OciLayout, index: Descriptor, depth: int) -> list[Descriptor]:
    if depth >= MAX_INDEX_DEPTH:
        raise LayoutError(f"'{layout.root}': indexes nest more than {MAX_INDEX_DEPTH} deep")
    out = []
    for m in layout.read_nested_index(index).manifests:
        if m.media_type in media_types.INDEX_TYPES:
            out += _manifests(layout, m, depth + 1)
        elif m.media_type in media_types.MANIFEST_TYPES:
            out.append(m)
    return out


def _image(
    layout: OciLayout,
    desc: Descriptor,
    subjects: dict[str, list[dict[str, Any]]],
    tmp: Path,
    *,
    files: bool,
    known: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    manifest = layout.read_manifest(desc)
    loaded = layout.read_json(manifest.config, "config")
    raw: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    rootfs = raw.get("rootfs") if isinstance(raw.get("rootfs"), dict) else {}
    listed = (rootfs or {}).get("diff_ids")
    diff_ids = [d for d in listed if isinstance(d, str)] if isinstance(listed, list) else []
    platform = desc.platform.to_json() if desc.platform else None
    if platform is None and isinstance(raw.get("os"), str) and isinstance(raw.get("architecture"), str):
        platform = {"architecture": raw["architecture"], "os": raw["os"]}
    layers = []
    for i, layer in enumerate(manifest.layers):
        item: dict[str, Any] = {
            "digest": layer.digest,
            "mediaType": layer.media_type,
            "size": layer.size,
            "diffId": diff_ids[i] if i < len(diff_ids) else None,
        }
        if files and layer.media_type in _TAR_LAYERS and layer.digest in known:
            item.update(known[layer.digest])
        elif files and layer.media_type in _TAR_LAYERS and layout.has_blob(layer.digest):
            what = f"'{layout.root}': layer {i + 1} ({layer.digest})"
            item.update(layer_contents(layout, layer, item["diffId"], what, tmp / f"{i}.tar"))
        else:
            item.update({"storePaths": None, "files": None, "filesTruncated": False})
        layers.append(item)
    return {
        "digest": desc.digest,
        "mediaType": desc.media_type,
        "size": desc.size,
        "platform": platform,
        "artifactType": manifest.artifact_type,
        "config": {
            "digest": manifest.config.digest,
            "mediaType": manifest.config.media_type,
            "size": manifest.config.size,
        },
        "layers": layers,
        "referrers": subjects.get(desc.digest, []),
    }


def layer_contents(
    layout: OciLayout, layer: Descriptor, diff_id: str | None, what: str, tar_path: Path
) -> dict[str, Any]:
    """The store paths (``/nix/store/HASH-NAME``) the layer ``layer`` of ``layout`` holds, and
    its other paths (at most :data:`MAX_FILES`), its blob decompressed into ``tar_path`` (removed
    after) to be read; ``what`` names the layer in errors."""
    layout.decompress(layer, tar_path, what, diff_id=diff_id)
    store: dict[str, None] = {}
    paths: list[str] = []
    truncated = False
    try:
        with reading_tar(tar_path, what) as tar:
            for m in tar:
                change = classify(m.name, what)
                path = change.path
                if change.kind != "entry" or not path:
                    continue
                if path.startswith(_STORE) and len(path) > len(_STORE):
                    store.setdefault("/" + "/".join(path.split("/")[:3]))
                    continue
                if len(paths) < MAX_FILES:
                    paths.append("/" + path)
                else:
                    truncated = True
            check_complete(tar, what)
    finally:
        tar_path.unlink(missing_ok=True)
    return {"storePaths": sorted(store), "files": sorted(paths), "filesTruncated": truncated}


def check_contents(doc: object, what: str) -> dict[str, Any]:
    """``doc`` if it is what :func:`layer_contents` gives (store paths, files, whether they were
    truncated), else a :class:`LayoutError` naming ``what``."""
    keys = {"storePaths", "files", "filesTruncated"}

    def strings(v: object) -> bool:
        return isinstance(v, list) and all(isinstance(s, str) for s in v) and v == sorted(v)

    if (
        not isinstance(doc, dict)
        or set(doc) != keys
        or not strings(doc["storePaths"])
        or not strings(doc["files"])
        or not isinstance(doc["filesTruncated"], bool)
    ):
        raise LayoutError(f"{what} does not list a layer's store paths and files")
    return doc
