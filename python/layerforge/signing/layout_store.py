"""Cosign objects in an OCI layout: untagged entries of index.json whose manifest names the
image as its ``subject`` and has the kind's ``artifactType`` (so ``push`` carries them with
the image, like its SBOM). Saving replaces the kind's previous entry for that image."""

from __future__ import annotations

from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.signing.cosign_objects import CosignObject, Kind


class LayoutStore:
    def __init__(self, layout: OciLayout) -> None:
        self.layout = layout
        self.where = f"'{layout.root}'"

    def _entry(self, subject: str, kind: Kind) -> tuple[Descriptor, Manifest] | None:
        for entry in self.layout.read_index().manifests:
            if entry.artifact_type == kind.artifact_type and entry.media_type == media_types.IMAGE_MANIFEST:
                manifest = self.layout.read_manifest(entry)
                if manifest.subject is not None and manifest.subject.digest == subject:
                    return entry, manifest
        return None

    def find(self, subject: str, kind: Kind) -> Manifest | None:
        found = self._entry(subject, kind)
        return None if found is None else found[1]

    def payload(self, desc: Descriptor) -> bytes:
        return self.layout.read_blob(desc.digest, desc.size)

    def save(self, subject: Descriptor, kind: Kind, obj: CosignObject) -> None:
        for data in obj.blobs.values():
            self.layout.put_blob(data, "")
        stored = self.layout.put_blob(obj.manifest, media_types.IMAGE_MANIFEST)
        entry = Descriptor(
            media_type=media_types.IMAGE_MANIFEST,
            digest=stored.digest,
            size=stored.size,
            artifact_type=kind.artifact_type,
        )
        with self.layout.locked():
            previous = self._entry(subject.digest, kind)
            index = self.layout.read_index()
            kept = tuple(m for m in index.manifests if previous is None or m.digest != previous[0].digest)
            self.layout.write_index(Index(manifests=kept, annotations=index.annotations).with_untagged(entry))
