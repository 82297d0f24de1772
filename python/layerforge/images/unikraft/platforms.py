"""Unikraft platforms and architectures, with the names KraftKit writes and the kconfig
features it adds for each (``unikraft/arch`` and ``unikraft/plat`` in kraftkit)."""

from __future__ import annotations

from layerforge.errors import UsageError

#: Platform name -> the features kraftkit injects for it.
PLATFORM_FEATURES: dict[str, tuple[str, ...]] = {
    "qemu": ("CONFIG_PLAT_KVM=y", "CONFIG_KVM_VMM_QEMU=y"),
    "fc": ("CONFIG_PLAT_KVM=y", "CONFIG_KVM_VMM_FIRECRACKER=y"),
    "kraftcloud": ("CONFIG_PLAT_KVM=y", "CONFIG_KVM_VMM_FIRECRACKER=y"),
    "xen": ("CONFIG_PLAT_XEN=y",),
    "linuxu": ("CONFIG_PLAT_LINUXU=y",),
}
PLATFORM_ALIASES = {"kvm": "qemu", "firecracker": "fc"}

#: Architecture (kraftkit's spelling, the image's ``architecture``) -> injected feature.
ARCH_FEATURES = {"x86_64": "CONFIG_ARCH_X86_64=y", "arm64": "CONFIG_ARCH_ARM_64=y", "arm": "CONFIG_ARCH_ARM_32=y"}
#: Docker/Go spellings users type, mapped to kraftkit's.
ARCH_ALIASES = {"amd64": "x86_64", "aarch64": "arm64", "arm32": "arm"}


def normalize_plat(plat: str, option: str = "--plat") -> str:
    p = PLATFORM_ALIASES.get(plat, plat)
    if p not in PLATFORM_FEATURES:
        known = ", ".join([*PLATFORM_FEATURES, *PLATFORM_ALIASES])
        raise UsageError(option, f"unknown platform {plat!r} (expected one of {known})")
    return p


def normalize_arch(arch: str, option: str = "--arch") -> str:
    a = ARCH_ALIASES.get(arch, arch)
    if a not in ARCH_FEATURES:
        known = ", ".join([*ARCH_FEATURES, *ARCH_ALIASES])
        raise UsageError(option, f"unknown architecture {arch!r} (expected one of {known})")
    return a


def injected_features(plat: str, arch: str) -> dict[str, str]:
    """The ``CONFIG_*`` entries kraftkit adds for a platform and architecture."""
    out = {}
    for item in (ARCH_FEATURES[arch], *PLATFORM_FEATURES[plat]):
        key, _, value = item.partition("=")
        out[key] = value
    return out
