"""Reading an image out of a layout: manifest and config (choosing a platform from an
index), bringing its blobs into another layout, and listing the files its layers hold."""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayoutError
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.layout.whiteouts import classify
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import ImageConfig
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform, PlatformMismatch, listed_platform, platform_matches
from layerforge.model.reference import LayoutRef
from layerforge.trust.blobs import import_blob
from layerforge.trust.tars import check_complete, reading_tar
from layerforge.trust.text import shown


@dataclass(frozen=True)
class StoredImage:
    layout: OciLayout
    ref: str | None
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig


#: How deep indexes may nest (an index of indexes of manifests is 2).
MAX_INDEX_DEPTH = 8


def index_manifests(layout: OciLayout, desc: Descriptor) -> list[Descriptor]:
    """The image manifests index ``desc`` lists, directly or through nested indexes, in order.
    Each nested index is read once, however many indexes list it (its manifests come where it
    first does), so indexes sharing children cost what their distinct indexes do, not what
    their paths do; indexes nest at most :data:`MAX_INDEX_DEPTH` deep on every path, and an
    index that lists itself is refused."""
    out: list[Descriptor] = []
    heights: dict[str, int] = {}  # an index walked -> how many indexes deep it goes, itself included

    def too_deep() -> LayoutError:
        return LayoutError(f"'{layout.root}': indexes nest more than {MAX_INDEX_DEPTH} deep below {desc.digest}")

    def walk(index: Descriptor, path: tuple[str, ...]) -> int:
        if len(path) > MAX_INDEX_DEPTH:
            raise too_deep()
        height = 1
        for child in layout.read_nested_index(index).manifests:
            if child.media_type in media_types.MANIFEST_TYPES:
                out.append(child)
            elif child.media_type in media_types.INDEX_TYPES:
                if child.digest in path:
                    raise LayoutError(f"'{layout.root}': index {child.digest} lists itself (a cycle)")
                below = heights.get(child.digest)
                if below is None:
                    below = walk(child, (*path, child.digest))
                elif len(path) + below > MAX_INDEX_DEPTH:
                    raise too_deep()
                height = max(height, 1 + below)
        heights[index.digest] = height
        return height

    walk(desc, (desc.digest,))
    return out


def checked_platform(layout: OciLayout, desc: Descriptor, manifest: Manifest | None = None) -> Platform:
    """The platform of image ``desc`` (its ``manifest``, read when not given): the one its
    index entry lists, which must be its config's (:func:`~layerforge.model.platform.listed_platform`),
    else its config's."""
    config = layout.read_config(manifest or layout.read_manifest(desc)).platform
    try:
        return listed_platform(desc.platform, config, desc.digest, f"'{layout.root}'")
    except PlatformMismatch as e:
        raise LayoutError(f"{e}; refused (an index entry must name its image's platform)") from None


def select_manifest(layout: OciLayout, desc: Descriptor, platform: str | None) -> Descriptor:
    """Resolve an index entry to one image manifest (by ``os/arch[/variant]`` for indexes);
    a single manifest must match ``platform`` when one is asked for. The image chosen must be
    the platform its entry lists by its config too (:func:`checked_platform`)."""
    if desc.media_type in media_types.MANIFEST_TYPES:
        if platform is not None or desc.platform is not None:
            actual = checked_platform(layout, desc)
            if platform is not None and not platform_matches(actual, platform):
                raise LayoutError(f"'{layout.root}': image {desc.digest} is {shown(actual)}, not {shown(platform)}")
        return desc
    if desc.media_type not in media_types.INDEX_TYPES:
        raise LayoutError(f"{desc.digest} has media type {shown(repr(desc.media_type))}, not an image")
    children = index_manifests(layout, desc)
    if platform is not None:
        children = [m for m in children if m.platform is not None and platform_matches(m.platform, platform)]
    if len(children) == 1:
        if children[0].platform is not None:
            checked_platform(layout, children[0])
        return children[0]
    choices = shown(", ".join(str(m.platform) for m in children if m.platform is not None) or "none")
    if platform is not None and not children:
        raise LayoutError(f"{desc.digest} has no image for --platform {shown(platform)}")
    raise LayoutError(f"{desc.digest} is a multi-platform index; choose one with --platform (available: {choices})")


def read_image(target: LayoutRef, platform: str | None = None) -> StoredImage:
    layout = OciLayout.open(target.path)
    entry = layout.resolve(target.ref)
    desc = select_manifest(layout, entry, platform)
    manifest = layout.read_manifest(desc)
    config = layout.read_config(manifest)
    if len(config.diff_ids) != len(manifest.layers):
        raise LayoutError(f"{target}: config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers")
    return StoredImage(layout=layout, ref=target.ref, descriptor=desc, manifest=manifest, config=config)


def import_blobs(src: OciLayout, dest: OciLayout, descriptors: list[Descriptor], *, shallow: bool = False) -> None:
    """Make ``descriptors``' blobs present in ``dest``: hard links when on one filesystem,
    otherwise copies; each checked against its digest and size first (see
    :func:`~layerforge.trust.blobs.import_blob`) and appearing atomically under its digest.
    With ``shallow``, blobs a shallow ``src`` lacks stay absent and ``dest`` (locked by the
    caller) is marked shallow with ``src``'s sources; without, they are an error."""
    if src.root.resolve() == dest.root.resolve():
        return
    lacking = False
    for d in descriptors:
        target = dest.blob_path(d.digest)
        if target.is_file():
            continue
        what = f"'{src.root}': blob {d.digest}"
        if shallow and not src.has_blob(d.digest) and src.shallow_sources():
            lacking = True
            continue
        src.require_blob(d.digest, what)
        import_blob(src.blob_path(d.digest), target, d.digest, d.size, dest.tmp_dir, what=what)
    if lacking:
        dest.mark_shallow(src.shallow_sources())


#: An image path's (kind, symlink target); kind is dir, file, symlink or other.
FileIndex = dict[str, tuple[str, str]]


def list_files(image: StoredImage) -> FileIndex:
    """The merged file tree of an image's layers (whiteouts applied as unpacking applies
    them, :mod:`layerforge.layout.whiteouts`), by absolute path."""
    files: FileIndex = {}
    parent = Path(tempfile.gettempdir())
    with scratch_dir(parent, "list") as tmp:
        for i, (layer, diff_id) in enumerate(zip(image.manifest.layers, image.config.diff_ids), 1):
            what = f"'{image.layout.root}': layer {i} ({layer.digest})"
            tar_path = tmp / f"{i}.tar"
            image.layout.decompress(layer, tar_path, what, diff_id=diff_id)
            added: FileIndex = {}
            with reading_tar(tar_path, what) as tar:
                for m in tar:
                    change = classify(m.name, what)
                    if change.kind == "entry":
                        added["/" + change.path] = (_kind(m), m.linkname if m.issym() else "")
                    elif change.kind in ("opaque", "whiteout"):
                        top = "/" + change.path if change.path else ""
                        for p in [p for p in files if _hidden(p, top, change.kind == "opaque")]:
                            del files[p]
                check_complete(tar, what)
            tar_path.unlink()
            files.update(added)
    return files


def _kind(m: tarfile.TarInfo) -> str:
    if m.isdir():
        return "dir"
    if m.issym():
        return "symlink"
    return "file" if m.isfile() or m.islnk() else "other"


def _hidden(path: str, top: str, opaque: bool) -> bool:
    """Whether a whiteout of ``top`` (opaque: of its contents) hides ``path``."""
    return path.startswith(top + "/") or (path == top and not opaque)
