"""An OCI image index of images from other layouts, one entry per platform.

Each source is an image manifest or an index (flattened: its image manifests become entries of
the new index, nested indexes too). An entry's platform is its image's config (``os``,
``architecture``, ``variant``, ``os.version``, ``os.features``); an index entry that already
carries a platform must agree with its config on ``os``, ``architecture`` and ``variant``, and
keeps the rest of its platform (a Nydus manifest's ``os.features``, which its config lacks).
Two entries for one platform are an error naming both sources. Every blob of every entry
(manifest, config, layers) is brought into the output layout checked against its digest, and
the index is tagged only after all of them are there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.image_reader import import_blobs, index_manifests
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.annotations import REF_NAME, REVISION, SOURCE
from layerforge.model.descriptor import Descriptor
from layerforge.model.index import Index
from layerforge.model.platform import Platform, conventional_variant, listed_platform
from layerforge.model.reference import LayoutRef, validate_ref
from layerforge.trust.text import has_control, shown


@dataclass(frozen=True)
class IndexSource:
    """One image or index to include, and how errors name it (a Pants target, or LAYOUT:REF)."""

    ref: LayoutRef
    label: str = ""

    @property
    def name(self) -> str:
        return shown(self.label or str(self.ref))


@dataclass(frozen=True)
class IndexEntry:
    source: IndexSource
    layout: OciLayout
    descriptor: Descriptor  # with the platform it has in the new index
    blobs: tuple[Descriptor, ...]


@dataclass(frozen=True)
class IndexResult:
    ref: str
    descriptor: Descriptor
    entries: tuple[IndexEntry, ...]


def platform_key(p: Platform) -> tuple[object, ...]:
    return (p.os, p.architecture, conventional_variant(p), p.os_version, tuple(p.os_features))


def collect_entries(sources: Sequence[IndexSource]) -> list[IndexEntry]:
    """Every platform image of ``sources``, checked; nothing is written."""
    if not sources:
        raise UsageError("LAYOUT:REF", "give at least one image or index")
    entries: list[IndexEntry] = []
    taken: dict[tuple[object, ...], IndexEntry] = {}
    for source in sources:
        layout = OciLayout.open(source.ref.path)
        top = layout.resolve(source.ref.ref)
        if top.media_type in media_types.MANIFEST_TYPES:
            manifests = [top]
        elif top.media_type in media_types.INDEX_TYPES:
            manifests = index_manifests(layout, top)
        else:
            raise LayerforgeError(f"{source.name}: {top.digest} is no image (media type {shown(repr(top.media_type))})")
        found = [e for e in (_entry(source, layout, m) for m in manifests) if e is not None]
        if not found:
            raise LayerforgeError(f"{source.name} holds no platform image")
        for entry in found:
            assert entry.descriptor.platform is not None
            key = platform_key(entry.descriptor.platform)
            if key in taken:
                raise LayerforgeError(
                    f"{taken[key].source.name} and {source.name} are both {shown(str(entry.descriptor.platform))}: "
                    "an index holds one image per platform"
                )
            taken[key] = entry
            entries.append(entry)
    return entries


def _entry(source: IndexSource, layout: OciLayout, desc: Descriptor) -> IndexEntry | None:
    manifest = layout.read_manifest(desc)
    if manifest.config.media_type not in media_types.IMAGE_CONFIG_TYPES:
        return None  # an artifact (an SBOM, an attestation), not an image of a platform
    platform = listed_platform(desc.platform, layout.read_config(manifest).platform, desc.digest, source.name)
    annotations = {k: v for k, v in desc.annotations.items() if k != REF_NAME}
    entry = replace(desc, platform=platform, annotations=annotations)
    return IndexEntry(source, layout, entry, (desc, manifest.config, *manifest.layers))


def build_index(
    out: OciLayout,
    sources: Sequence[IndexSource],
    ref: str,
    *,
    source: str | None = None,
    revision: str | None = None,
) -> IndexResult:
    """Write the index of ``sources`` into ``out`` (opened for writing and locked by the
    caller) and tag it ``ref``; ``source``/``revision`` annotate it."""
    validate_ref(ref)
    annotations: dict[str, str] = {}
    for option, key, value in (("--source", SOURCE, source), ("--revision", REVISION, revision)):
        if value is not None:
            if not value or has_control(value):
                raise UsageError(option, f"{shown(repr(value))} is empty or holds control characters")
            annotations[key] = value
    for s in sources:
        if Path(s.ref.path).resolve() == out.root.resolve() and s.ref.ref == ref:
            raise UsageError("--tag", f"{shown(ref)} names {s.name} in the output layout; the index needs another tag")
    entries = collect_entries(sources)
    for e in entries:
        import_blobs(e.layout, out, list(e.blobs), shallow=True)
    index = Index(manifests=tuple(e.descriptor for e in entries), annotations=annotations)
    desc = out.put_json(index.to_json(), media_types.IMAGE_INDEX)
    out.tag(desc, ref)
    return IndexResult(ref, desc, tuple(entries))
