"""Content descriptors: what points at a blob."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.model.digest import validate_digest
from layerforge.model.platform import Platform


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=True, hash=False)
    platform: Platform | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise LayerforgeError(f"{where}: expected an object, got {obj!r}")
        try:
            media_type, digest, size = obj["mediaType"], obj["digest"], obj["size"]
        except KeyError as e:
            raise LayerforgeError(f"{where}: missing {e.args[0]!r}") from None
        if not isinstance(media_type, str) or not isinstance(size, int) or size < 0:
            raise LayerforgeError(f"{where}: invalid mediaType or size in {obj!r}")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise LayerforgeError(f"{where}: annotations must be an object")
        platform = Platform.from_json(obj["platform"]) if "platform" in obj else None
        return cls(
            media_type=media_type,
            digest=validate_digest(digest, f"{where} digest"),
            size=size,
            annotations={str(k): str(v) for k, v in annotations.items()},
            platform=platform,
            artifact_type=obj.get("artifactType"),
        )

    def with_annotations(self, extra: dict[str, str]) -> Descriptor:
        return replace(self, annotations={**self.annotations, **extra})
