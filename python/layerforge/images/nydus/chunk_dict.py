"""``--chunk-dict LAYOUT[:REF] | BOOTSTRAP``: the bootstrap of another Nydus image whose
chunks new blobs may reference, and where that image's blobs are."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.nydus.constants import (
    ANNOTATION_BLOB,
    ANNOTATION_BOOTSTRAP,
    BOOTSTRAP_PATH,
    MANIFEST_ARTIFACT_TYPE,
    OS_FEATURE,
)
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex
from layerforge.model.manifest import Manifest
from layerforge.model.reference import parse_layout_ref
from layerforge.trust.tars import reading_tar

OPTION = "--chunk-dict"


@dataclass(frozen=True)
class ChunkDict:
    #: The dictionary bootstrap, as a file for the native converter.
    bootstrap: Path
    #: Blob files of the dictionary image by digest (``sha256:...``).
    blobs: dict[str, Path]
    #: Directory to look for blobs not listed (a bare bootstrap's neighbours), if any.
    blob_dir: Path | None
    #: Sizes of the blobs the dictionary image's manifest lists (a bare bootstrap has none).
    sizes: dict[str, int] = field(default_factory=dict)

    def blob_file(self, digest: str) -> Path:
        path = self.blobs.get(digest)
        if path is None and self.blob_dir is not None:
            path = self.blob_dir / digest_hex(digest)
        if path is None or not path.is_file():
            raise UsageError(OPTION, f"blob {digest} of the dictionary image is not available (looked in {path})")
        return path


@contextlib.contextmanager
def open_chunk_dict(arg: str) -> Iterator[ChunkDict]:
    """Resolve the option's value; temporary files live as long as the context."""
    target = parse_layout_ref(arg)
    if (target.path / "oci-layout").is_file():
        with scratch_dir(Path(tempfile.gettempdir()), "dict") as tmp:
            yield _from_layout(OciLayout.open(target.path), target.ref, tmp)
        return
    path = Path(arg)
    if not path.is_file():
        raise UsageError(OPTION, f"'{arg}' is neither an OCI image layout nor a bootstrap file")
    yield ChunkDict(bootstrap=path, blobs={}, blob_dir=path.parent)


def nydus_manifest(layout: OciLayout, entry: Descriptor) -> Manifest:
    """The Nydus manifest an index entry names (directly, or inside a --merge-platform index)."""
    if entry.media_type in media_types.INDEX_TYPES:
        children = [
            m
            for m in layout.read_nested_index(entry).manifests
            if m.artifact_type == MANIFEST_ARTIFACT_TYPE or (m.platform and OS_FEATURE in m.platform.os_features)
        ]
        if len(children) != 1:
            raise LayerforgeError(f"'{layout.root}': {entry.digest} holds {len(children)} Nydus manifests, expected 1")
        entry = children[0]
    return layout.read_manifest(entry)


def _from_layout(layout: OciLayout, ref: str | None, tmp: Path) -> ChunkDict:
    manifest = nydus_manifest(layout, layout.resolve(ref))
    boot_layers = [m for m in manifest.layers if m.annotations.get(ANNOTATION_BOOTSTRAP) == "true"]
    if not boot_layers:
        raise UsageError(OPTION, f"'{layout.root}' is not a Nydus image (no layer annotated {ANNOTATION_BOOTSTRAP})")
    config = layout.read_config(manifest)
    if len(config.diff_ids) != len(manifest.layers):
        raise UsageError(
            OPTION,
            f"'{layout.root}': config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers",
        )
    boot = boot_layers[-1]
    diff_id = config.diff_ids[manifest.layers.index(boot)]
    tar_path = tmp / "bootstrap.tar"
    what = f"{OPTION} '{layout.root}': bootstrap layer {boot.digest}"
    layout.decompress(boot, tar_path, what, diff_id=diff_id)
    bootstrap = tmp / "dict.boot"
    with reading_tar(tar_path, what) as tar:
        try:
            member = tar.extractfile(BOOTSTRAP_PATH)
        except KeyError:
            member = None
        if member is None:
            raise UsageError(OPTION, f"'{layout.root}': the bootstrap layer has no {BOOTSTRAP_PATH}")
        with member, open(bootstrap, "wb") as out:
            shutil.copyfileobj(member, out, 1 << 20)
    listed = [m for m in manifest.layers if m.annotations.get(ANNOTATION_BLOB) == "true"]
    blobs = {m.digest: layout.blob_path(m.digest) for m in listed}
    return ChunkDict(bootstrap=bootstrap, blobs=blobs, blob_dir=None, sizes={m.digest: m.size for m in listed})
