"""What a kernel image is: a Unikraft ELF, an x86 bzImage, or an arm64/arm Linux image,
and which architecture it was built for (read from the file, never trusted from the user)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError, UsageError
from layerforge.trust.blobs import read_head

_ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64", 0x28: "arm", 0x03: "i386", 0xF3: "riscv64"}
#: Multiboot (v1) headers live in the first 8 KiB, 4-byte aligned.
_MULTIBOOT_MAGIC = struct.pack("<I", 0x1BADB002)
_MULTIBOOT_SEARCH = 8192


@dataclass(frozen=True)
class KernelInfo:
    path: Path
    #: "elf", "multiboot elf", "bzImage", "arm64-image" or "zImage".
    format: str
    arch: str


def identify_kernel(path: Path, option: str = "--kernel") -> KernelInfo:
    """Read the header of ``path`` and say what kernel it is; refuse anything else."""
    if path.is_dir():
        raise UsageError(option, f"'{path}' is a directory, not a kernel image")
    try:
        head = read_head(path, _MULTIBOOT_SEARCH, f"'{path}'")
    except LayerforgeError as e:
        raise UsageError(option, str(e)) from None
    except OSError as e:
        raise UsageError(option, f"cannot read '{path}': {e.strerror}") from None
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        endian = "<" if head[5] == 1 else ">"
        (machine,) = struct.unpack_from(endian + "H", head, 18)
        arch = _ELF_MACHINES.get(machine, f"ELF machine {machine:#x}")
        if arch == "i386" and _has_multiboot_header(head):
            # Unikraft's x86_64 QEMU/Xen kernels are 64-bit code in a multiboot ELF32 wrapper
            # (objcopy -O elf32-i386), the form QEMU's -kernel loads; there is no i386 Unikraft.
            return KernelInfo(path, "multiboot elf", "x86_64")
        return KernelInfo(path, "elf", arch)
    if len(head) >= 0x237 and head[0x202:0x206] == b"HdrS" and head[0x1FE:0x200] == b"\x55\xaa":
        (version,) = struct.unpack_from("<H", head, 0x206)
        # xloadflags bit 0 (XLF_KERNEL_64, boot protocol >= 2.12): a 64-bit kernel.
        is_64 = version >= 0x20C and head[0x236] & 1
        return KernelInfo(path, "bzImage", "x86_64" if is_64 else "i386")
    if len(head) >= 0x3C and head[0x38:0x3C] == b"ARM\x64":
        return KernelInfo(path, "arm64-image", "arm64")
    if len(head) >= 0x28 and struct.unpack_from("<I", head, 0x24)[0] == 0x016F2818:
        return KernelInfo(path, "zImage", "arm")
    raise UsageError(option, f"'{path}' is neither an ELF kernel nor a Linux bzImage/Image")


def _has_multiboot_header(head: bytes) -> bool:
    for offset in range(0, len(head) - 11, 4):
        if head[offset : offset + 4] == _MULTIBOOT_MAGIC:
            magic, flags, checksum = struct.unpack_from("<III", head, offset)
            if (magic + flags + checksum) & 0xFFFFFFFF == 0:
                return True
    return False


def check_kernel(path: Path, arch: str, option: str = "--kernel") -> KernelInfo:
    """Identify ``path`` and require it to be built for ``arch``."""
    info = identify_kernel(path, option)
    if info.arch != arch:
        raise UsageError(
            option, f"'{path}' is an {info.arch} kernel ({info.format}), but the target architecture is {arch}"
        )
    return info
