"""An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from layerforge import _native
from layerforge.errors import LayoutError
from layerforge.layout.atomic import atomic_write
from layerforge.layout.scratch import clean_stale, pid_alive
from layerforge.model import media_types
from layerforge.model.annotations import REF_NAME, SHALLOW
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex, sha256_digest
from layerforge.model.image_config import ImageConfig
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.progress import ProgressCallback
from layerforge.trust.blobs import BlobMissing, read_document
from layerforge.trust.json_shape import Fields, load_json
from layerforge.trust.rootfs import remove_tree
from layerforge.trust.text import shown

#: Scratch directory inside a layout (same filesystem, so renames into blobs/ are atomic).
TMP_DIR = ".layerforge-tmp"
# Scratch names carry the writer's pid:
# native blobs "blob-<pid>-...", atomic_write ".<name>.<pid>.<hex8>.tmp".
_TEMP_NAMES = (re.compile(r"^blob-(\d+)-"), re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp\Z"))


class ShallowLayoutError(LayoutError):
    """A shallow layout was asked for the bytes of a blob it does not hold."""


class OciLayout:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> OciLayout:
        marker = path / "oci-layout"
        if not marker.is_file():
            if not path.exists():
                raise LayoutError(f"'{path}' does not exist")
            raise LayoutError(f"'{path}' is not an OCI image layout (no oci-layout file)")
        doc = Fields(load_json(read_document(marker, f"'{marker}'", limit=4096), f"'{marker}'"), f"'{marker}'")
        version = doc.string("imageLayoutVersion")
        if version != media_types.OCI_LAYOUT_VERSION:
            raise LayoutError(f"'{marker}': unsupported imageLayoutVersion {shown(repr(version))}")
        return cls(path)

    @classmethod
    def create(cls, path: Path) -> OciLayout:
        """Open ``path`` as a layout, initialising it if it is absent or an empty directory."""
        if path.exists() and not path.is_dir():
            raise LayoutError(f"'{path}' exists and is not a directory")
        if (path / "oci-layout").is_file():
            return cls.open(path)
        if path.is_dir() and any(path.iterdir()):
            raise LayoutError(f"refusing to write into '{path}': it is not empty and not an OCI image layout")
        layout = cls(path)
        layout.blob_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(layout.index_path, canonical_json(Index().to_json()), layout.tmp_dir)
        atomic_write(
            path / "oci-layout",
            canonical_json({"imageLayoutVersion": media_types.OCI_LAYOUT_VERSION}),
            layout.tmp_dir,
        )
        return layout

    # -- paths ---------------------------------------------------------------------------

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def tmp_dir(self) -> Path:
        return self.root / TMP_DIR

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    # -- shallow layouts -----------------------------------------------------------------

    def shallow_sources(self) -> tuple[str, ...]:
        """``REGISTRY/REPO``s holding the layer blobs a shallow layout lacks (empty: not shallow)."""
        value = self.read_index().annotations.get(SHALLOW, "")
        return tuple(s for s in value.split(",") if s)

    def mark_shallow(self, sources: tuple[str, ...]) -> None:
        """Record in index.json that layer blobs may be absent and where they are (hold :meth:`locked`)."""
        index = self.read_index()
        merged = sorted({*self.shallow_sources(), *sources})
        self.write_index(Index(manifests=index.manifests, annotations={**index.annotations, SHALLOW: ",".join(merged)}))

    def require_blob(self, digest: str, what: str | None = None) -> None:
        """Fail in one line naming ``digest`` when a shallow layout lacks it (the caller reads
        its bytes next; a blob missing from a complete layout is that reader's error)."""
        if self.blob_path(digest).is_file() or not (self.index_path.is_file() and self.shallow_sources()):
            return
        sources = shown(", ".join(self.shallow_sources()))
        raise ShallowLayoutError(
            f"{what or f'blob {digest}'}: '{self.root}' is a shallow layout without blob {digest} "
            f"(it is in {sources}); pull the image without --shallow"
        )

    # -- blobs ---------------------------------------------------------------------------

    def put_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.is_file():
            atomic_write(path, data, self.tmp_dir)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def put_json(self, obj: Any, media_type: str) -> Descriptor:
        return self.put_blob(canonical_json(obj), media_type)

    def read_blob(self, digest: str, size: int | None = None) -> bytes:
        """Read a (small) blob, verifying that its content matches its name (and ``size``):
        a regular file of at most :data:`MAX_DOCUMENT` bytes."""
        what = f"'{self.root}': blob {digest}"
        data = read_document(self.blob_path(digest), what, size)
        if sha256_digest(data) != digest:
            raise LayoutError(f"{what} does not match its digest (corrupt layout)")
        return data

    def read_json(self, desc: Descriptor, kind: str = "blob") -> Any:
        """A JSON blob, parsed within :mod:`layerforge.trust.json_shape`'s bounds."""
        return load_json(self.read_blob(desc.digest, desc.size), self.where(desc, kind))

    def where(self, desc: Descriptor, kind: str) -> str:
        """How messages name a document of this layout: ``'LAYOUT': manifest sha256:...``."""
        return f"'{self.root}': {kind} {desc.digest}"

    def read_manifest(self, desc: Descriptor) -> Manifest:
        return Manifest.from_json(self.read_json(desc, "manifest"), self.where(desc, "manifest"))

    def read_config(self, manifest: Manifest) -> ImageConfig:
        return ImageConfig.from_json(self.read_json(manifest.config, "config"), self.where(manifest.config, "config"))

    def read_nested_index(self, desc: Descriptor) -> Index:
        return Index.from_json(self.read_json(desc, "index"), self.where(desc, "index"))

    def decompress(
        self,
        desc: Descriptor,
        dest: Path | None,
        what: str,
        progress: ProgressCallback | None = None,
        *,
        diff_id: str | None = None,
    ) -> _native.DecompressResult:
        """Decompress layer blob ``desc`` to ``dest`` (or only read it), checking it against
        its digest and size while streaming and, with ``diff_id`` (the config's), the
        uncompressed stream too; errors name it as ``what`` and nothing is left at ``dest``."""
        self.require_blob(desc.digest, what)
        result = _native.decompress_blob(
            self.blob_path(desc.digest), dest, digest=desc.digest, size=desc.size, label=what, progress=progress
        )
        if diff_id is not None and result.diff_id != diff_id:
            if dest is not None:
                dest.unlink(missing_ok=True)
            raise LayoutError(f"{what} decompresses to {result.diff_id}, the image config's diff_id is {diff_id}")
        return result

    # -- index ---------------------------------------------------------------------------

    def read_index(self) -> Index:
        where = f"'{self.index_path}'"
        try:
            data = read_document(self.index_path, where)
        except BlobMissing:
            raise LayoutError(f"'{self.root}' has no index.json") from None
        return Index.from_json(load_json(data, where), where)

    def write_index(self, index: Index) -> None:
        atomic_write(self.index_path, canonical_json(index.to_json()), self.tmp_dir)

    def tag(self, desc: Descriptor, ref: str) -> None:
        """Point ``ref`` at ``desc`` (read-modify-write of index.json; hold :meth:`locked`).
        Artifacts whose subject no longer has any reference are dropped from the index."""
        self.write_index(self._prune_referrers(self.read_index().with_ref(desc, ref)))

    def add_untagged(self, desc: Descriptor) -> None:
        """List ``desc`` in index.json without a reference (artifacts such as SBOMs)."""
        self.write_index(self.read_index().with_untagged(desc))

    def _prune_referrers(self, index: Index) -> Index:
        live = {m.digest for m in index.manifests if REF_NAME in m.annotations}
        kept = []
        for m in index.manifests:
            if REF_NAME not in m.annotations and m.artifact_type and m.media_type == media_types.IMAGE_MANIFEST:
                subject = self.read_manifest(m).subject
                if subject is not None and subject.digest not in live:
                    continue
            kept.append(m)
        return Index(manifests=tuple(kept), annotations=index.annotations)

    def resolve(self, ref: str | None) -> Descriptor:
        """The index entry for ``ref``; without a ref, the only entry there is."""
        index = self.read_index()
        if ref is not None:
            found = index.find(ref)
            if found is None:
                refs = ", ".join(shown(r, 100) for r in index.refs()) or "none"
                raise LayoutError(f"'{self.root}' has no reference {shown(repr(ref))} (it has: {shown(refs)})")
            return found
        images = [m for m in index.manifests if not m.artifact_type]
        if len(images) == 1:
            return images[0]
        if not images:
            raise LayoutError(f"'{self.root}' holds no images")
        refs = shown(", ".join(shown(r, 100) for r in index.refs()))
        raise LayoutError(f"'{self.root}' holds {len(images)} images; name one as LAYOUT:REF ({refs})")

    # -- concurrency and hygiene --------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[OciLayout]:
        """Exclusive lock on the layout directory for the read-modify-write of a build."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(fd)

    def clean_stale_temp(self) -> None:
        """Remove scratch files and directories left by builds whose process is gone (e.g.
        killed -9): blob and atomic-write temporaries, initrd trees and other scratch dirs."""
        if not self.tmp_dir.is_dir():
            return
        for p in self.tmp_dir.iterdir():
            for pattern in _TEMP_NAMES:
                m = pattern.match(p.name)
                if m and not pid_alive(int(m.group(1))):
                    with contextlib.suppress(OSError):
                        remove_tree(p)
                    break
        clean_stale(self.tmp_dir)

    def remove_tmp_dir_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp_dir.rmdir()


@contextlib.contextmanager
def open_for_write(path: Path, keep: Callable[[BaseException], bool] | None = None) -> Iterator[OciLayout]:
    """A locked layout to build into. If the build fails, a layout this call created is
    removed again and an existing one keeps its old contents (blobs are only added, and
    index.json is replaced atomically at the end). ``keep(error)`` true keeps a created
    layout as the failure left it (verified blobs for a later run to resume from)."""
    fresh = not path.exists()
    was_empty_dir = path.is_dir() and not any(path.iterdir())
    layout = OciLayout.create(path)
    try:
        with layout.locked():
            layout.clean_stale_temp()
            yield layout
    except BaseException as e:
        if (fresh or was_empty_dir) and keep is not None and keep(e):
            raise
        if fresh:
            shutil.rmtree(path, ignore_errors=True)
        elif was_empty_dir:
            for child in path.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    finally:
        if path.exists():
            layout.remove_tmp_dir_if_empty()
