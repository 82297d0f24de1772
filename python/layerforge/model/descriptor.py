"""Content descriptors: what points at a blob."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from layerforge.model.digest import validate_digest
from layerforge.model.platform import Platform
from layerforge.trust.json_shape import Fields


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
    def from_json(cls, obj: Any, where: str = "descriptor", path: str = "") -> Descriptor:
        return cls.from_fields(Fields(obj, where, path))

    @classmethod
    def from_fields(cls, f: Fields) -> Descriptor:
        media_type = f.string("mediaType", required=True, one_line=True)
        assert media_type is not None
        digest = f.string("digest", required=True)
        assert digest is not None
        size = f.integer("size", required=True)
        assert size is not None
        platform = f.child("platform")
        f.strings("urls")
        return cls(
            media_type=media_type,
            digest=validate_digest(digest, f"{f.where}: '{f.field('digest')}'"),
            size=size,
            annotations=f.string_map("annotations"),
            platform=Platform.from_fields(platform) if platform is not None else None,
            artifact_type=f.string("artifactType", one_line=True),
        )

    def with_annotations(self, extra: dict[str, str]) -> Descriptor:
        return replace(self, annotations={**self.annotations, **extra})
