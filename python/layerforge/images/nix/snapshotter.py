"""nix-snapshotter references: the image's OCI archive added to the Nix store, which gives
the ``nix:0/nix/store/<hash>-<name>.tar`` reference containerd's nix-snapshotter resolves.
(The snapshotter layer itself is built by :func:`layer_specs.snapshotter_spec`.)"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from layerforge._native import LayerSpec
from layerforge.images.nix.closure import Nix
from layerforge.layers.build import build_archive
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.digest import digest_hex
from layerforge.model.index import Index


def archive_name(ref: str) -> str:
    """A Nix store name for the image archive (``[A-Za-z0-9+-._?=]``, no leading dot)."""
    safe = re.sub(r"[^A-Za-z0-9+\-._?=]", "-", ref).lstrip(".") or "image"
    return f"{safe}.tar"


def write_oci_archive(layout: OciLayout, ref: str, dest_dir: Path, epoch: int) -> Path:
    """An OCI archive (a tar of a layout holding just this image) written by the native
    tar writer, so it is as reproducible as the layers."""
    entry = layout.resolve(ref)
    manifest_desc = select_manifest(layout, entry, None)
    manifest = layout.read_manifest(manifest_desc)
    blobs = {manifest_desc.digest, manifest.config.digest, *(layer.digest for layer in manifest.layers)}
    if entry.digest != manifest_desc.digest:
        blobs.add(entry.digest)
    spec = LayerSpec(mtime=epoch)
    spec.add_file("oci-layout", canonical_json({"imageLayoutVersion": media_types.OCI_LAYOUT_VERSION}))
    spec.add_file("index.json", canonical_json(Index(manifests=(entry,)).to_json()))
    for digest in sorted(blobs):
        spec.add_path(layout.blob_path(digest), f"blobs/sha256/{digest_hex(digest)}")
    archive = dest_dir / archive_name(ref)
    build_archive(spec, dest_dir / "blobs", dest_dir / "tmp").rename(archive)
    return archive


def publish_to_store(layout: OciLayout, ref: str, nix: Nix, epoch: int = 1) -> str:
    """Add the image's OCI archive to the Nix store; return its ``nix:0`` reference."""
    with scratch_dir(Path(tempfile.gettempdir()), "archive") as tmp:
        archive = write_oci_archive(layout, ref, tmp, epoch)
        store_path = nix.add_to_store(archive)
    return f"nix:0{store_path}"
