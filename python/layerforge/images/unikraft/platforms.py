"""Unikraft platforms and architectures, with the names KraftKit writes and the kconfig
features it adds for each (``unikraft/arch`` and ``unikraft/plat`` in kraftkit)."""

from __future__ import annotations

from collections.abc import Mapping

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


def kconfig_platforms(kconfig: Mapping[str, str]) -> frozenset[str] | None:
    """The platforms a kernel built with ``kconfig`` can be packaged for: ``CONFIG_PLAT_XEN``
    and ``CONFIG_PLAT_LINUXU`` give ``xen`` and ``linuxu``; ``CONFIG_PLAT_KVM`` gives ``qemu``
    with ``CONFIG_KVM_VMM_QEMU``, ``fc``/``kraftcloud`` with ``CONFIG_KVM_VMM_FIRECRACKER``, all
    three with neither (Unikraft before the VMM choice). None when the kconfig names no platform."""
    out: set[str] = set()
    if kconfig.get("CONFIG_PLAT_XEN") == "y":
        out.add("xen")
    if kconfig.get("CONFIG_PLAT_LINUXU") == "y":
        out.add("linuxu")
    if kconfig.get("CONFIG_PLAT_KVM") == "y":
        qemu = kconfig.get("CONFIG_KVM_VMM_QEMU") == "y"
        firecracker = kconfig.get("CONFIG_KVM_VMM_FIRECRACKER") == "y"
        if qemu or not firecracker:
            out.add("qemu")
        if firecracker or not qemu:
            out |= {"fc", "kraftcloud"}
    return frozenset(out) if out else None


def check_kconfig_platform(plat: str, kconfig: Mapping[str, str], option: str = "--plat") -> None:
    """Refuse packaging a kernel for a platform its kconfig was not built for (a Xen kernel
    as ``qemu``, a QEMU build as ``fc``): the package would carry both platforms' features
    and fail only when ``kraft run`` boots it."""
    fits = kconfig_platforms(kconfig)
    if fits is None or plat in fits:
        return
    built = sorted(k for k in ("CONFIG_PLAT_KVM", "CONFIG_PLAT_XEN", "CONFIG_PLAT_LINUXU") if kconfig.get(k) == "y")
    vmm = sorted(k for k in ("CONFIG_KVM_VMM_QEMU", "CONFIG_KVM_VMM_FIRECRACKER") if kconfig.get(k) == "y")
    raise UsageError(
        option,
        f"{plat!r} contradicts the kconfig ({', '.join(f'{k}=y' for k in built + vmm)}: "
        f"built for {', '.join(sorted(fits))})",
    )


def injected_features(plat: str, arch: str) -> dict[str, str]:
    """The ``CONFIG_*`` entries kraftkit adds for a platform and architecture."""
    out = {}
    for item in (ARCH_FEATURES[arch], *PLATFORM_FEATURES[plat]):
        key, _, value = item.partition("=")
        out[key] = value
    return out
