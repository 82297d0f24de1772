"""Image manifests (``application/vnd.oci.image.manifest.v1+json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.trust.json_shape import Fields, ShapeError
from layerforge.trust.text import shown


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    media_type: str = media_types.IMAGE_MANIFEST
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "manifest") -> Manifest:
        f = Fields(obj, where)
        if f.raw("schemaVersion") != 2 or isinstance(f.raw("schemaVersion"), bool):
            raise ShapeError(f"{where}: not a schemaVersion 2 manifest")
        media_type = f.string("mediaType") or media_types.IMAGE_MANIFEST
        if media_type not in media_types.MANIFEST_TYPES:
            raise ShapeError(f"{where}: unexpected mediaType {shown(repr(media_type))}")
        config = f.child("config", required=True)
        assert config is not None
        subject = f.child("subject")
        return cls(
            config=Descriptor.from_fields(config),
            layers=tuple(Descriptor.from_fields(x) for x in f.objects("layers", required=True)),
            annotations=f.string_map("annotations"),
            media_type=media_type,
            subject=Descriptor.from_fields(subject) if subject is not None else None,
            artifact_type=f.string("artifactType", one_line=True),
        )
