"""Kernels for unikraft_image tests: small ELF/bzImage headers for the format checks, and a
real Debian kernel (standing in for a Unikraft ELF) to boot under qemu."""

from __future__ import annotations

import struct
import subprocess
from functools import cache
from pathlib import Path

from tests.helpers import TEST_CACHE, machine_lock

CACHE = TEST_CACHE / "kernel"
MARKER = "LAYERFORGE-UNIKRAFT-BOOT-OK"
EM_X86_64, EM_AARCH64 = 0x3E, 0xB7


def elf_kernel(path: Path, machine: int = EM_X86_64, payload: bytes = b"unikraft kernel text\n") -> Path:
    """A 64-bit little-endian ELF executable header for ``machine``, then ``payload``."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x100000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    path.write_bytes(header + payload)
    return path


def bzimage_header(path: Path, is_64: bool) -> Path:
    """The x86 boot-protocol header of a bzImage (version 2.15), 64-bit or not."""
    data = bytearray(0x400)
    data[0x1FE:0x200] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    data[0x206:0x208] = struct.pack("<H", 0x20F)
    data[0x236] = 1 if is_64 else 0
    path.write_bytes(bytes(data))
    return path


@cache
def debian_kernel() -> Path:
    """``vmlinuz`` of Debian's current linux-image-amd64, downloaded once into a cache."""
    vmlinuz = CACHE / "vmlinuz"
    with machine_lock("kernel"):
        if not vmlinuz.is_file():
            _download_kernel(vmlinuz)
    return vmlinuz


def _download_kernel(vmlinuz: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    deps = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    package = next(w.split()[-1] for w in deps.splitlines() if w.strip().startswith("Depends: linux-image-"))
    work = CACHE / "download"
    work.mkdir(exist_ok=True)
    subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, check=True, timeout=600)
    deb = next(work.glob("linux-image-*.deb"))
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, timeout=300)
    found = next((tree / "boot").glob("vmlinuz-*"))
    tmp = CACHE / "vmlinuz.tmp"
    found.replace(tmp)
    tmp.replace(vmlinuz)
    subprocess.run(["rm", "-rf", str(work)], check=True)


def busybox_rootfs(root: Path, marker: str = MARKER) -> Path:
    """A root filesystem whose ``/init`` prints ``marker`` and powers the machine off."""
    (root / "bin").mkdir(parents=True)
    (root / "proc").mkdir()
    (root / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    init = root / "init"
    init.write_text(f"#!/bin/busybox sh\n/bin/busybox echo {marker}\n/bin/busybox poweroff -f\n")
    init.chmod(0o755)
    return root


def boot(kernel: Path, initrd: Path, timeout: int = 240) -> str:
    """Boot ``kernel`` with ``initrd`` under qemu (software emulation); the console output."""
    proc = subprocess.run(
        ["qemu-system-x86_64", "-m", "256", "-nographic", "-no-reboot", "-kernel", str(kernel),
         "-initrd", str(initrd), "-append", "console=ttyS0 quiet panic=-1"],
        capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return proc.stdout + proc.stderr
