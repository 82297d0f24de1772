"""The image configuration blob (``application/vnd.oci.image.config.v1+json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.model.platform import Platform


@dataclass(frozen=True)
class RuntimeConfig:
    """The ``config`` object: how a container of this image runs by default."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.env:
            out["Env"] = list(self.env)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out

    @classmethod
    def from_json(cls, obj: Any) -> RuntimeConfig:
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise LayerforgeError(f"image config: 'config' must be an object, got {obj!r}")

        def strs(key: str) -> tuple[str, ...] | None:
            v = obj.get(key)
            return None if v is None else tuple(str(x) for x in v)

        return cls(
            entrypoint=strs("Entrypoint"),
            cmd=strs("Cmd"),
            env=strs("Env") or (),
            working_dir=obj.get("WorkingDir") or None,
            user=obj.get("User") or None,
            labels={str(k): str(v) for k, v in (obj.get("Labels") or {}).items()},
            exposed_ports=tuple(sorted(obj.get("ExposedPorts") or {})),
            volumes=tuple(sorted(obj.get("Volumes") or {})),
            stop_signal=obj.get("StopSignal") or None,
        )


@dataclass(frozen=True)
class HistoryEntry:
    created: str
    created_by: str
    comment: str | None = None
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"created": self.created, "created_by": self.created_by}
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: Any) -> HistoryEntry:
        return cls(
            created=str(obj.get("created", "")),
            created_by=str(obj.get("created_by", "")),
            comment=obj.get("comment"),
            empty_layer=bool(obj.get("empty_layer", False)),
        )


@dataclass(frozen=True)
class ImageConfig:
    platform: Platform
    created: str
    diff_ids: tuple[str, ...]
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    history: tuple[HistoryEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "created": self.created,
            "config": self.config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
        }
        if self.platform.variant:
            out["variant"] = self.platform.variant
        if self.platform.os_version:
            out["os.version"] = self.platform.os_version
        if self.platform.os_features:
            out["os.features"] = list(self.platform.os_features)
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        return out

    @classmethod
    def from_json(cls, obj: Any) -> ImageConfig:
        if not isinstance(obj, dict):
            raise LayerforgeError("image config is not a JSON object")
        rootfs = obj.get("rootfs") or {}
        return cls(
            platform=Platform.from_json(obj),
            created=str(obj.get("created", "")),
            diff_ids=tuple(rootfs.get("diff_ids") or ()),
            config=RuntimeConfig.from_json(obj.get("config")),
            history=tuple(HistoryEntry.from_json(h) for h in obj.get("history") or ()),
        )
