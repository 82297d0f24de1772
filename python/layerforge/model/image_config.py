"""The image configuration blob (``application/vnd.oci.image.config.v1+json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerforge.model.digest import validate_digest
from layerforge.model.platform import Platform
from layerforge.trust.json_shape import Fields


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
    def from_json(cls, obj: Any, where: str = "image config", path: str = "config") -> RuntimeConfig:
        if obj is None:
            return cls()
        return cls.from_fields(Fields(obj, where, path))

    @classmethod
    def from_fields(cls, f: Fields) -> RuntimeConfig:
        """Strict types; ``Env``, ``User``, ``WorkingDir``, ``StopSignal`` and the keys of
        ``Labels``, ``ExposedPorts``, ``Volumes`` on one line."""
        return cls(
            entrypoint=f.strings("Entrypoint"),
            cmd=f.strings("Cmd"),
            env=f.strings("Env", one_line=True) or (),
            working_dir=f.string("WorkingDir", one_line=True) or None,
            user=f.string("User", one_line=True) or None,
            labels=f.string_map("Labels", one_line_keys=True),
            exposed_ports=f.key_set("ExposedPorts"),
            volumes=f.key_set("Volumes"),
            stop_signal=f.string("StopSignal", one_line=True) or None,
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
    def from_fields(cls, f: Fields) -> HistoryEntry:
        return cls(
            created=f.string("created") or "",
            created_by=f.string("created_by") or "",
            comment=f.string("comment"),
            empty_layer=bool(f.boolean("empty_layer")),
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
    def from_json(cls, obj: Any, where: str = "image config") -> ImageConfig:
        f = check_config(obj, where)
        rootfs = f.child("rootfs")
        diff_ids = (rootfs.strings("diff_ids") if rootfs is not None else None) or ()
        for i, d in enumerate(diff_ids):
            validate_digest(d, f"{where}: 'rootfs.diff_ids[{i}]'")
        config = f.child("config")
        return cls(
            platform=Platform.from_fields(f),
            created=f.string("created") or "",
            diff_ids=diff_ids,
            config=RuntimeConfig.from_fields(config) if config is not None else RuntimeConfig(),
            history=tuple(HistoryEntry.from_fields(h) for h in f.objects("history")),
        )


def check_config(obj: Any, where: str = "image config") -> Fields:
    """Check the types of an image config's known fields (all optional here: unikernel and
    artifact configs lack some), for readers that keep the raw document."""
    f = Fields(obj, where)
    for key in ("architecture", "os", "variant", "os.version"):
        f.string(key, one_line=True)
    f.strings("os.features", one_line=True)
    f.string("created", one_line=True)
    f.string("author")
    rootfs = f.child("rootfs")
    if rootfs is not None:
        rootfs.string("type", one_line=True)
        rootfs.strings("diff_ids", one_line=True)
    config = f.child("config")
    if config is not None:
        RuntimeConfig.from_fields(config)
    for h in f.objects("history"):
        HistoryEntry.from_fields(h)
    return f
