"""What a nix-image build is asked to do (the CLI flags and Pants fields, as data)."""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass, field
from pathlib import Path

from layerforge.images.nix.perms import PermSpec
from layerforge.layers.build import DEFAULT_COMPRESSION
from layerforge.model.image_config import RuntimeConfig
from layerforge.model.reference import DEFAULT_TAG, LayoutRef
from layerforge.option_flags import default, high

#: Docker refuses images with more layers (moby layer/layer_store.go maxLayerDepth).
LAYER_LIMIT = high("nix.max_layers")
DEFAULT_MAX_LAYERS = int(default("nix.max_layers"))
DEFAULT_LAYERING = str(default("nix.layering"))


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
    layering: str = DEFAULT_LAYERING
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
    compression: str = DEFAULT_COMPRESSION
    level: int | None = None
    threads: int = int(default("layer.threads"))
    nix_snapshotter: bool = False
    sbom: bool = False
    source: str | None = None
    revision: str | None = None


def host_arch() -> str:
    machine = host_platform.machine()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
