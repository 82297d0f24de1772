"""Image indexes (``index.json`` of a layout, multi-platform images)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerforge.model import media_types
from layerforge.model.annotations import REF_NAME
from layerforge.model.descriptor import Descriptor
from layerforge.trust.json_shape import Fields, ShapeError


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_types.IMAGE_INDEX,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "index") -> Index:
        f = Fields(obj, where)
        if f.raw("schemaVersion") != 2 or isinstance(f.raw("schemaVersion"), bool):
            raise ShapeError(f"{where}: not a schemaVersion 2 image index")
        f.string("mediaType", one_line=True)
        subject = f.child("subject")
        return cls(
            manifests=tuple(Descriptor.from_fields(m) for m in f.objects("manifests", required=True)),
            annotations=f.string_map("annotations"),
            subject=Descriptor.from_fields(subject) if subject is not None else None,
            artifact_type=f.string("artifactType", one_line=True),
        )

    def refs(self) -> list[str]:
        return [m.annotations[REF_NAME] for m in self.manifests if REF_NAME in m.annotations]

    def find(self, ref: str) -> Descriptor | None:
        for m in self.manifests:
            if m.annotations.get(REF_NAME) == ref:
                return m
        return None

    def with_untagged(self, desc: Descriptor) -> Index:
        """Add an entry without a reference (replacing one with the same digest)."""
        kept = [m for m in self.manifests if REF_NAME in m.annotations or m.digest != desc.digest]
        return Index(manifests=tuple(sorted([*kept, desc], key=_order)), annotations=self.annotations)

    def with_ref(self, desc: Descriptor, ref: str) -> Index:
        """Point ``ref`` at ``desc``, replacing any entry holding that ref. Entries are kept
        sorted by ref name (then digest) so index.json itself is reproducible."""
        tagged = desc.with_annotations({REF_NAME: ref})
        kept = [m for m in self.manifests if m.annotations.get(REF_NAME) != ref]
        entries = sorted([*kept, tagged], key=_order)
        return Index(manifests=tuple(entries), annotations=self.annotations)


def _order(m: Descriptor) -> tuple[str, str]:
    return (m.annotations.get(REF_NAME, ""), m.digest)
