"""An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from layerforge.errors import LayoutError
from layerforge.layout.atomic import atomic_write
from layerforge.model import media_types
from layerforge.model.annotations import REF_NAME
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex, sha256_digest
from layerforge.model.image_config import ImageConfig
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest

#: Scratch directory inside a layout (same filesystem, so renames into blobs/ are atomic).
TMP_DIR = ".layerforge-tmp"
# Scratch names carry the writer's pid:
# native blobs "blob-<pid>-...", atomic_write ".<name>.<pid>.<hex8>.tmp".
_TEMP_NAMES = (re.compile(r"^blob-(\d+)-"), re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$"))


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
        try:
            version = json.loads(marker.read_bytes()).get("imageLayoutVersion")
        except (ValueError, AttributeError) as e:
            raise LayoutError(f"'{marker}' is not valid JSON: {e}") from None
        if version != media_types.OCI_LAYOUT_VERSION:
            raise LayoutError(f"'{marker}': unsupported imageLayoutVersion {version!r}")
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

    # -- blobs ---------------------------------------------------------------------------

    def put_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.is_file():
            atomic_write(path, data, self.tmp_dir)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def put_json(self, obj: Any, media_type: str) -> Descriptor:
        return self.put_blob(canonical_json(obj), media_type)

    def read_blob(self, digest: str) -> bytes:
        """Read a (small) blob, verifying that its content matches its name."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise LayoutError(f"'{self.root}': blob {digest} is missing") from None
        if sha256_digest(data) != digest:
            raise LayoutError(f"'{self.root}': blob {digest} does not match its digest (corrupt layout)")
        return data

    def read_json(self, desc: Descriptor) -> Any:
        data = self.read_blob(desc.digest)
        if len(data) != desc.size:
            raise LayoutError(f"'{self.root}': blob {desc.digest} has {len(data)} bytes, descriptor says {desc.size}")
        try:
            return json.loads(data)
        except ValueError as e:
            raise LayoutError(f"'{self.root}': blob {desc.digest} is not valid JSON: {e}") from None

    def read_manifest(self, desc: Descriptor) -> Manifest:
        return Manifest.from_json(self.read_json(desc))

    def read_config(self, manifest: Manifest) -> ImageConfig:
        return ImageConfig.from_json(self.read_json(manifest.config))

    def read_nested_index(self, desc: Descriptor) -> Index:
        return Index.from_json(self.read_json(desc), f"index {desc.digest}")

    # -- index ---------------------------------------------------------------------------

    def read_index(self) -> Index:
        try:
            obj = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            raise LayoutError(f"'{self.root}' has no index.json") from None
        except ValueError as e:
            raise LayoutError(f"'{self.index_path}' is not valid JSON: {e}") from None
        return Index.from_json(obj, str(self.index_path))

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
                refs = ", ".join(index.refs()) or "none"
                raise LayoutError(f"'{self.root}' has no reference {ref!r} (it has: {refs})")
            return found
        images = [m for m in index.manifests if not m.artifact_type]
        if len(images) == 1:
            return images[0]
        if not images:
            raise LayoutError(f"'{self.root}' holds no images")
        refs = ", ".join(index.refs())
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
        """Remove scratch files left by builds whose process is gone (e.g. killed -9)."""
        if not self.tmp_dir.is_dir():
            return
        for p in self.tmp_dir.iterdir():
            for pattern in _TEMP_NAMES:
                m = pattern.match(p.name)
                if m and not _pid_alive(int(m.group(1))):
                    p.unlink(missing_ok=True)
                    break

    def remove_tmp_dir_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp_dir.rmdir()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def open_for_write(path: Path) -> Iterator[OciLayout]:
    """A locked layout to build into. If the build fails, a layout this call created is
    removed again and an existing one keeps its old contents (blobs are only added, and
    index.json is replaced atomically at the end)."""
    fresh = not path.exists()
    was_empty_dir = path.is_dir() and not any(path.iterdir())
    layout = OciLayout.create(path)
    try:
        with layout.locked():
            layout.clean_stale_temp()
            yield layout
    except BaseException:
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
