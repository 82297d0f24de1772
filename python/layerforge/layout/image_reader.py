"""Reading an image out of a layout: manifest and config (choosing a platform from an
index), bringing its blobs into another layout, and listing the files its layers hold."""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from layerforge import _native
from layerforge.errors import LayoutError
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.manifest import Manifest
from layerforge.model.reference import LayoutRef


@dataclass(frozen=True)
class StoredImage:
    layout: OciLayout
    ref: str | None
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig


def select_manifest(layout: OciLayout, desc: Descriptor, platform: str | None) -> Descriptor:
    """Resolve an index entry to one image manifest (by ``os/arch[/variant]`` for indexes)."""
    if desc.media_type in media_types.MANIFEST_TYPES:
        return desc
    if desc.media_type not in media_types.INDEX_TYPES:
        raise LayoutError(f"{desc.digest} has media type {desc.media_type!r}, not an image")
    children = [m for m in layout.read_nested_index(desc).manifests if m.media_type in media_types.MANIFEST_TYPES]
    if platform is not None:
        children = [m for m in children if m.platform is not None and _platform_matches(str(m.platform), platform)]
    if len(children) == 1:
        return children[0]
    choices = ", ".join(str(m.platform) for m in children if m.platform is not None) or "none"
    raise LayoutError(f"{desc.digest} is a multi-platform index; choose one with --platform (available: {choices})")


def _platform_matches(actual: str, wanted: str) -> bool:
    return actual == wanted or actual.startswith(wanted + "/")


def read_image(target: LayoutRef, platform: str | None = None) -> StoredImage:
    layout = OciLayout.open(target.path)
    entry = layout.resolve(target.ref)
    desc = select_manifest(layout, entry, platform)
    manifest = layout.read_manifest(desc)
    config = layout.read_config(manifest)
    if len(config.diff_ids) != len(manifest.layers):
        raise LayoutError(f"{target}: config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers")
    return StoredImage(layout=layout, ref=target.ref, descriptor=desc, manifest=manifest, config=config)


def import_blobs(src: OciLayout, dest: OciLayout, descriptors: list[Descriptor]) -> None:
    """Make ``descriptors``' blobs present in ``dest``: hard links when on one filesystem,
    otherwise verified copies; each appears atomically under its digest."""
    if src.root.resolve() == dest.root.resolve():
        return
    for d in descriptors:
        target = dest.blob_path(d.digest)
        if target.is_file():
            continue
        source = src.blob_path(d.digest)
        if not source.is_file():
            raise LayoutError(f"'{src.root}': blob {d.digest} is missing")
        place_blob(source, target, d.digest, dest.tmp_dir)


def place_blob(source: Path, target: Path, digest: str, tmp_dir: Path, *, link: bool = True) -> None:
    """Make ``target`` a hard link to (``link``), or a verified copy of, blob ``source``,
    atomically (``tmp_dir`` on ``target``'s filesystem)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    if not (link and _linked(source, tmp)):
        _copy_verified(source, tmp, digest)
    os.replace(tmp, target)


def _linked(source: Path, tmp: Path) -> bool:
    """Whether ``tmp`` could be made a hard link to ``source`` (not across filesystems)."""
    try:
        os.link(source, tmp)
    except OSError:
        return False
    return True


def _copy_verified(source: Path, tmp: Path, digest: str) -> None:
    h = hashlib.sha256()
    try:
        with open(source, "rb") as fin, open(tmp, "xb") as fout:
            for chunk in iter(lambda: fin.read(1 << 20), b""):
                h.update(chunk)
                fout.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if "sha256:" + h.hexdigest() != digest:
        tmp.unlink(missing_ok=True)
        raise LayoutError(f"'{source}' does not match its digest {digest} (corrupt layout)")


#: An image path's (kind, symlink target); kind is dir, file, symlink or other.
FileIndex = dict[str, tuple[str, str]]


def list_files(image: StoredImage) -> FileIndex:
    """The merged file tree of an image's layers (overlay whiteouts applied), by absolute path."""
    files: FileIndex = {}
    with tempfile.TemporaryDirectory(prefix="layerforge-list-") as tmp:
        for i, layer in enumerate(image.manifest.layers):
            tar_path = Path(tmp) / f"{i}.tar"
            _native.decompress_blob(image.layout.blob_path(layer.digest), tar_path)
            added: FileIndex = {}
            with tarfile.open(tar_path) as tar:
                for m in tar:
                    path = "/" + posixpath.normpath(m.name.lstrip("./") or ".").lstrip("/")
                    if path == "/.":
                        continue
                    parent, base = posixpath.split(path)
                    if base == ".wh..wh..opq":
                        _remove_under(files, parent, keep_self=True)
                    elif base.startswith(".wh."):
                        _remove_under(files, posixpath.join(parent, base[4:]), keep_self=False)
                    else:
                        kind = (
                            "dir"
                            if m.isdir()
                            else "symlink"
                            if m.issym()
                            else "file"
                            if m.isfile() or m.islnk()
                            else "other"
                        )
                        added[path] = (kind, m.linkname if m.issym() else "")
            tar_path.unlink()
            files.update(added)
    return files


def _kind(m: tarfile.TarInfo) -> str:
    if m.isdir():
        return "dir"
    if m.issym():
        return "symlink"
    return "file" if m.isfile() or m.islnk() else "other"


def _remove_under(files: FileIndex, path: str, keep_self: bool) -> None:
    prefix = path.rstrip("/") + "/"
    for p in [p for p in files if p.startswith(prefix) or (p == path and not keep_self)]:
        del files[p]
