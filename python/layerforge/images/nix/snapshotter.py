"""nix-snapshotter images: instead of layer tarballs of the store, one small layer holding
an empty mountpoint per store path of the closure (plus the copy-to-root symlinks), annotated
so that containerd's nix-snapshotter realises the store paths from Nix at pull time.

Annotations on that layer: ``containerd.io/snapshot/nix-layer: "true"`` and
``containerd.io/snapshot/nix-store-path.<i>: /nix/store/...`` for every closure path, in
sorted order from 0. The image archive itself can be added to the Nix store, which gives the
``nix:0/nix/store/<hash>-<name>.tar`` reference nix-snapshotter resolves.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from layerforge import _native
from layerforge._native import LayerSpec
from layerforge.images.nix import copy_to_root as ctr
from layerforge.images.nix.closure import Closure, Nix
from layerforge.images.nix.store_path import STORE_DIR
from layerforge.layout.image_reader import select_manifest
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.digest import digest_hex
from layerforge.model.index import Index

NIX_LAYER = "containerd.io/snapshot/nix-layer"
NIX_STORE_PATH = "containerd.io/snapshot/nix-store-path"


def layer_spec(closure: Closure, root: dict[str, ctr.RootEntry], epoch: int) -> tuple[LayerSpec, dict[str, str]]:
    spec = LayerSpec(mtime=epoch)
    spec.add_dir("/nix", 0o755)
    spec.add_dir(STORE_DIR, 0o755)
    for path in closure.paths:
        spec.add_dir(path, 0o555)
    ctr.add_to_spec(spec, root)
    annotations = {NIX_LAYER: "true"}
    for i, path in enumerate(closure.paths):
        annotations[f"{NIX_STORE_PATH}.{i}"] = path
    return spec, annotations


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
    (result,) = _native.build_layers([spec], dest_dir / "blobs", dest_dir / "tmp", compression="none")
    archive = dest_dir / archive_name(ref)
    (dest_dir / "blobs" / digest_hex(result.digest)).rename(archive)
    return archive


def publish_to_store(layout: OciLayout, ref: str, nix: Nix, epoch: int = 1) -> str:
    """Add the image's OCI archive to the Nix store; return its ``nix:0`` reference."""
    with tempfile.TemporaryDirectory(prefix="layerforge-nix-archive-") as tmp:
        archive = write_oci_archive(layout, ref, Path(tmp), epoch)
        store_path = nix.add_to_store(archive)
    return f"nix:0{store_path}"
