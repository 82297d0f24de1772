"""One platform of a unikernel package: kernel, architecture, platform, kconfig and initrd.

``--target PLAT/ARCH=KERNEL[,initrd=FILE][,rootfs=DIR_OR_TAR][,kconfig=FILE]`` describes one in
a single argument; the platform's manifest is built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from layerforge.errors import UsageError
from layerforge.images.unikraft.initrd import InitrdSource
from layerforge.images.unikraft.platforms import normalize_arch, normalize_plat

_TARGET_KEYS = ("initrd", "rootfs", "kconfig")


@dataclass(frozen=True)
class UnikraftTarget:
    plat: str
    arch: str
    kernel: Path
    kconfig: Path | None = None
    initrd: InitrdSource | None = None
    #: The option that gave the platform, for error messages.
    option: str = field(default="--plat", compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.plat, self.arch)

    def __str__(self) -> str:
        return f"{self.plat}/{self.arch}"


def parse_target(spec: str, *, initrd_compression: str = "none", option: str = "--target") -> UnikraftTarget:
    """Parse ``PLAT/ARCH=KERNEL[,initrd=F][,rootfs=D][,kconfig=F]``."""
    head, sep, rest = spec.partition("=")
    plat_arch = head.split("/")
    if not sep or len(plat_arch) != 2 or not all(plat_arch) or not rest:
        raise UsageError(option, f"{spec!r} is not PLAT/ARCH=KERNEL[,initrd=FILE][,rootfs=DIR][,kconfig=FILE]")
    plat = normalize_plat(plat_arch[0], option)
    arch = normalize_arch(plat_arch[1], option)
    kernel, *extras = rest.split(",")
    values: dict[str, str] = {}
    for item in extras:
        key, eq, value = item.partition("=")
        if not eq or key not in _TARGET_KEYS or not value:
            raise UsageError(option, f"{spec!r}: {item!r} is not one of initrd=FILE, rootfs=DIR, kconfig=FILE")
        if key in values:
            raise UsageError(option, f"{spec!r}: {key}= given twice")
        values[key] = value
    if "initrd" in values and "rootfs" in values:
        raise UsageError(option, f"{spec!r}: give initrd= or rootfs=, not both")
    initrd = None
    if "initrd" in values:
        initrd = InitrdSource(file=Path(values["initrd"]))
    elif "rootfs" in values:
        initrd = InitrdSource(rootfs=Path(values["rootfs"]), compression=initrd_compression)
    kconfig = Path(values["kconfig"]) if "kconfig" in values else None
    return UnikraftTarget(plat=plat, arch=arch, kernel=Path(kernel), kconfig=kconfig, initrd=initrd, option=option)


def check_unique(targets: list[UnikraftTarget]) -> list[UnikraftTarget]:
    """Targets sorted by platform and architecture; two for the same one are refused."""
    seen: dict[tuple[str, str], UnikraftTarget] = {}
    for t in targets:
        if t.key in seen:
            raise UsageError("--target", f"{t} is given twice ({seen[t.key].kernel} and {t.kernel})")
        seen[t.key] = t
    return [seen[k] for k in sorted(seen)]
