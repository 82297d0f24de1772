"""The JSON documents of a KraftKit package, field for field as ``kraft pkg`` writes them
(kraftkit ``oci/manifest.go``, ``oci/index.go``), with our fixed ``created`` time.

* config: ``architecture`` (``x86_64``/``arm64``/``arm``), ``os`` = platform, ``os.version``,
  ``os.features``, ``config`` (always present; ``Env``/``Cmd``/``Labels``), ``rootfs``; no
  ``created``, no ``history``.
* manifest: the config descriptor carries the ``platform`` (kraft reads arch, platform and
  kconfig from there), layers are uncompressed tars annotated with their well-known path.
* index entries: the manifest's platform and a copy of its annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layerforge.images.unikraft.package_name import PackageName
from layerforge.model.annotations import CREATED, REF_NAME
from layerforge.model.descriptor import Descriptor
from layerforge.model.epoch import rfc3339
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform

KERNEL_PATH = "/unikraft/bin/kernel"
INITRD_PATH = "/unikraft/bin/initrd"
KERNEL_ANNOTATION = "org.unikraft.kernel.image"
INITRD_ANNOTATION = "org.unikraft.kernel.initrd"
IMAGE_NAME = "org.unikraft.image.name"
KERNEL_VERSION = "org.unikraft.kernel.version"
KRAFTKIT_VERSION_KEY = "sh.kraftkit.version"
CONTAINERD_NAME = "io.containerd.image.name"
#: kraft only checks that ``sh.kraftkit.version`` is present; we state the kraftkit release
#: whose package format we write.
KRAFTKIT_VERSION = "0.9.2"


@dataclass(frozen=True)
class RunConfig:
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["Env"] = list(self.env)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


def platform(plat: str, arch: str, version: str | None, features: tuple[str, ...]) -> Platform:
    return Platform(architecture=arch, os=plat, os_version=version or None, os_features=features)


def config_json(plat: Platform, run: RunConfig, diff_ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "architecture": plat.architecture,
        "os": plat.os,
        "config": run.to_json(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if plat.os_version:
        out["os.version"] = plat.os_version
    if plat.os_features:
        out["os.features"] = list(plat.os_features)
    return out


def manifest_annotations(
    name: PackageName, version: str | None, epoch: int, kraftkit_version: str = KRAFTKIT_VERSION
) -> dict[str, str]:
    out = {
        CONTAINERD_NAME: str(name),
        CREATED: rfc3339(epoch),
        REF_NAME: name.repo,
        IMAGE_NAME: name.repo,
        KRAFTKIT_VERSION_KEY: kraftkit_version,
    }
    if version:
        out[KERNEL_VERSION] = version
    return out


def index_annotations(name: PackageName, kraftkit_version: str = KRAFTKIT_VERSION) -> dict[str, str]:
    return {CONTAINERD_NAME: str(name), REF_NAME: name.repo, KRAFTKIT_VERSION_KEY: kraftkit_version}


def is_unikraft_entry(annotations: dict[str, str]) -> bool:
    return KRAFTKIT_VERSION_KEY in annotations


def platform_key(d: Descriptor) -> tuple[str, str]:
    """(platform, architecture) of a package entry, as kraft looks it up."""
    return (d.platform.os, d.platform.architecture) if d.platform else ("", "")


def manifest_blobs(manifest: Manifest, entry: Descriptor) -> list[Descriptor]:
    """Every blob of one platform's image, children first: layers, config, the manifest."""
    return [*manifest.layers, manifest.config, entry]
