"""Image manifests (``application/vnd.oci.image.manifest.v1+json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor


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
    def from_json(cls, obj: Any) -> Manifest:
        if not isinstance(obj, dict) or obj.get("schemaVersion") != 2:
            raise LayerforgeError("manifest: not a schemaVersion 2 manifest")
        media_type = obj.get("mediaType", media_types.IMAGE_MANIFEST)
        if media_type not in media_types.MANIFEST_TYPES:
            raise LayerforgeError(f"manifest: unexpected mediaType {media_type!r}")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise LayerforgeError("manifest: 'layers' must be a list")
        return cls(
            config=Descriptor.from_json(obj.get("config"), "manifest config"),
            layers=tuple(Descriptor.from_json(x, f"manifest layer {i}") for i, x in enumerate(layers)),
            annotations=dict(obj.get("annotations") or {}),
            media_type=media_type,
            subject=Descriptor.from_json(obj["subject"], "manifest subject") if obj.get("subject") else None,
            artifact_type=obj.get("artifactType"),
        )
