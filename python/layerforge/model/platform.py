"""Image platforms (``os``/``architecture``/...)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.trust.json_shape import Fields
from layerforge.trust.text import shown


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = "platform", path: str = "") -> Platform:
        return cls.from_fields(Fields(obj, where, path))

    @classmethod
    def from_fields(cls, f: Fields) -> Platform:
        """``architecture``/``os`` (required), ``variant``, ``os.version``, ``os.features``:
        strings on one line (they name files and end up in messages and kconfigs)."""
        architecture = f.string("architecture", required=True, one_line=True)
        os_ = f.string("os", required=True, one_line=True)
        assert architecture is not None and os_ is not None
        return cls(
            architecture=architecture,
            os=os_,
            variant=f.string("variant", one_line=True),
            os_version=f.string("os.version", one_line=True),
            os_features=f.strings("os.features", one_line=True) or (),
        )

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


#: Docker/OCI architecture names accepted for Linux images, with their conventional variant.
LINUX_ARCHES: dict[str, str | None] = {
    "amd64": None,
    "arm64": "v8",
    "arm": "v7",
    "386": None,
    "ppc64le": None,
    "s390x": None,
    "riscv64": None,
}


def conventional_variant(p: Platform) -> str | None:
    """``p``'s variant, an absent one being its architecture's conventional variant (as
    containerd compares platforms: ``linux/arm64`` is ``linux/arm64/v8``, ``linux/arm`` is
    ``linux/arm/v7``)."""
    return p.variant or (LINUX_ARCHES.get(p.architecture) if p.os == "linux" else None)


def same_platform(a: Platform, b: Platform) -> bool:
    """Whether ``a`` and ``b`` name one os/architecture/variant (see :func:`conventional_variant`);
    ``os.version`` and ``os.features`` are not compared."""
    return (a.os, a.architecture, conventional_variant(a)) == (b.os, b.architecture, conventional_variant(b))


class PlatformMismatch(LayerforgeError):
    """An index lists an image as one platform and the image's config says another."""


def listed_platform(listed: Platform | None, config: Platform, digest: str, where: str) -> Platform:
    """The platform of image ``digest``, which an index (``where``, for messages) lists as
    ``listed`` (None: with no platform) and whose config says ``config``. A listed platform must
    be the config's (:func:`same_platform`) and keeps the rest of what it says, the config
    filling in the ``os.version`` and ``os.features`` it lacks (a Nydus manifest's
    ``os.features``, which its config lacks, stay)."""
    if listed is None:
        return config
    if not same_platform(listed, config):
        raise PlatformMismatch(
            f"{where}: the index lists {digest} as {shown(listed)}, but its config says {shown(config)}"
        )
    return replace(
        listed, os_version=listed.os_version or config.os_version, os_features=listed.os_features or config.os_features
    )


def platform_matches(actual: Platform | None, wanted: str) -> bool:
    """Whether ``actual`` is what a ``--platform OS/ARCH[/VARIANT]`` asks for: ``linux/arm64``
    matches any variant of it; ``linux/arm64/v8`` only that one."""
    if actual is None:
        return False
    text = str(actual)
    return text == wanted or text.startswith(wanted + "/")


#: Nix systems and the OCI architecture of their Linux images.
NIX_SYSTEMS: dict[str, str] = {
    "x86_64-linux": "amd64",
    "aarch64-linux": "arm64",
    "armv7l-linux": "arm",
    "i686-linux": "386",
    "powerpc64le-linux": "ppc64le",
    "s390x-linux": "s390x",
    "riscv64-linux": "riscv64",
}


def arch_of_system(system: str, option: str = "--system") -> str:
    """The image architecture of a Nix ``system`` (``aarch64-linux`` -> ``arm64``)."""
    if system not in NIX_SYSTEMS:
        raise UsageError(option, f"{system!r} is not a Nix system layerforge knows ({', '.join(NIX_SYSTEMS)})")
    return NIX_SYSTEMS[system]


def linux_platform(arch: str) -> Platform:
    if arch not in LINUX_ARCHES:
        raise LayerforgeError(f"unsupported architecture {arch!r} (expected one of {', '.join(LINUX_ARCHES)})")
    return Platform(architecture=arch, os="linux", variant=LINUX_ARCHES[arch])
