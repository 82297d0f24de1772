"""What a nix-image build is asked to do (the CLI flags and Pants fields, as data)."""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass, field
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.model.image_config import RuntimeConfig
from layerforge.model.reference import DEFAULT_TAG, LayoutRef
from layerforge.option_flags import high
from layerforge.option_rules import default

#: Docker refuses images with more layers (moby layer/layer_store.go maxLayerDepth).
LAYER_LIMIT = high("nix.max_layers")
DEFAULT_MAX_LAYERS = int(default("nix.max_layers"))


@dataclass(frozen=True)
class PermSpec:
    """``REGEX=MODE[:UID:GID]``: mode/owner for the paths the regex fully matches. ``owner``
    and ``group`` hold names given instead of ids (``:app:app``) until the plan resolves them
    against the image's user."""

    pattern: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None

    def to_json(self) -> list[object]:
        if self.owner is not None or self.group is not None:
            raise LayerforgeError(f"--perms: {self.to_arg()!r} names an owner that was never resolved")
        return [self.pattern, self.mode, self.uid, self.gid]

    @classmethod
    def from_json(cls, v: list[object]) -> PermSpec:
        pattern, mode, uid, gid = v
        return cls(str(pattern), _opt_int(mode), _opt_int(uid), _opt_int(gid))

    def to_arg(self) -> str:
        s = f"{self.pattern}="
        if self.mode is not None:
            s += f"{self.mode:04o}"
        uid = self.owner if self.owner is not None else self.uid
        gid = self.group if self.group is not None else self.gid
        if uid is not None:
            s += f":{uid}:{gid if gid is not None else uid}"
        return s


def _opt_int(v: object) -> int | None:
    return None if v is None else int(str(v))


@dataclass(frozen=True)
class NixImageRequest:
    nix_file: Path | None = None
    attr: str | None = None
    argstrs: tuple[tuple[str, str], ...] = ()
    flake: str | None = None
    #: The Nix system to evaluate for (``aarch64-linux``); it sets the image's architecture.
    system: str | None = None
    derivations: tuple[str, ...] = ()
    store_paths: tuple[str, ...] = ()
    ref: str = DEFAULT_TAG
    arch: str | None = None
    #: Let executables built for another machine than ``arch`` into the image.
    allow_foreign_executables: bool = False
    layering: str = "popularity"
    max_layers: int = DEFAULT_MAX_LAYERS
    layer_groups: tuple[tuple[str, ...], ...] = ()
    copy_to_root: tuple[str, ...] = ()
    copy_to_root_attrs: tuple[str, ...] = ()
    copy_to_root_derivations: tuple[str, ...] = ()
    copy_to_root_mode: str = "symlink"
    perms: tuple[PermSpec, ...] = ()
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    uid: int | None = None
    gid: int | None = None
    from_image: LayoutRef | None = None
    compression: str = "gzip"
    level: int | None = None
    threads: int = 0
    nix_snapshotter: bool = False
    sbom: bool = False
    source: str | None = None
    revision: str | None = None


def host_arch() -> str:
    machine = host_platform.machine()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
