"""Booting a unikernel package in QEMU the way ``kraft run`` does for the ``qemu`` platform: the
platform's kernel and initrd extracted from the package (every layer checked against its
digest); on the kernel command line the kernel arguments, then ``--`` and the package's
``Cmd`` (or the arguments given) as the application arguments; the console on the terminal
(``-nographic``); emulation (``accel=tcg``; ``kvm``, or ``auto`` for KVM when the host offers
it for that architecture, on request: a nested KVM may fail where emulation works); QEMU's
exit status returned. A guest that writes N to the ``isa-debug-exit`` port (x86, 0xf4) ends
QEMU with status 2N+1, QEMU's convention. The guest has no network unless one is asked for
(``-nic none``: QEMU's default NIC on user-mode networking would reach the host's loopback
services through 10.0.2.2 and every network the host reaches); ``nics`` are QEMU ``-nic``
values given as they are."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError, UsageError
from layerforge.images.unikraft.extract import extract_unikraft
from layerforge.layout.scratch import scratch_dir
from layerforge.model.reference import LayoutRef
from layerforge.trust.text import has_control, shown

ACCELS = ("tcg", "kvm", "auto")
#: kraft run's default memory.
DEFAULT_MEMORY = "64M"
_MEMORY = re.compile(r"^[1-9][0-9]{0,6}[MG]?\Z")
#: Architecture -> (QEMU binary, machine arguments, the host's uname for KVM).
QEMU = {
    "x86_64": ("qemu-system-x86_64", ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"], "x86_64"),
    "arm64": ("qemu-system-aarch64", ["-machine", "virt", "-cpu", "max"], "aarch64"),
    "arm": ("qemu-system-arm", ["-machine", "virt"], "armv7l"),
}


@dataclass(frozen=True)
class BootRequest:
    target: LayoutRef
    arch: str
    memory: str = DEFAULT_MEMORY
    args: tuple[str, ...] | None = None
    kernel_args: tuple[str, ...] = ()
    qemu: str | None = None
    qemu_options: tuple[str, ...] = ()
    accel: str = "tcg"
    nics: tuple[str, ...] = ()


def boot_unikraft(req: BootRequest) -> int:
    """Extract the qemu/``arch`` kernel of the package, boot it attached to this terminal and
    return QEMU's exit status."""
    if req.accel not in ACCELS:
        raise UsageError("--accel", f"{shown(repr(req.accel))} is not one of {', '.join(ACCELS)}")
    if not _MEMORY.match(req.memory):
        raise UsageError("--memory", f"{shown(repr(req.memory))} is not a size in MiB (64, 64M, 1G)")
    binary, machine, host = QEMU.get(req.arch, (None, [], ""))
    if binary is None:
        raise UsageError("--arch", f"no QEMU for {shown(repr(req.arch))}")
    qemu = req.qemu or binary
    found = shutil.which(qemu)
    if found is None:
        raise LayerforgeError(f"--qemu: {shown(repr(qemu))} is not installed (on Debian: apt-get install qemu-system)")
    for nic in req.nics:
        if not nic or nic.startswith("-") or has_control(nic):
            raise UsageError("--nic", f"{shown(repr(nic))} is not a QEMU -nic value (user,model=virtio-net-pci)")
    with scratch_dir(Path(tempfile.gettempdir()), "boot") as tmp:
        files = extract_unikraft(req.target, "qemu", req.arch, tmp / "boot").files
        args = list(req.args) if req.args is not None else _cmd(files["config.json"])
        for a in [*req.kernel_args, *args]:
            if has_control(a):
                raise UsageError("ARGS", f"{shown(repr(a))} holds control characters")
        kvm = os.uname().machine == host and os.access("/dev/kvm", os.R_OK | os.W_OK)
        accel = {"tcg": "tcg", "kvm": "kvm", "auto": "kvm:tcg" if kvm else "tcg"}[req.accel]
        argv = [found, "-nographic", "-no-reboot", "-machine", f"accel={accel}", "-m", req.memory, *machine]
        for nic in req.nics or ("none",):
            argv += ["-nic", nic]
        argv += ["-kernel", str(files["kernel"])]
        if "initrd" in files:
            argv += ["-initrd", str(files["initrd"])]
        cmdline = [*req.kernel_args, *(["--", *args] if args else [])]
        if cmdline:
            argv += ["-append", " ".join(cmdline)]
        code = subprocess.run([*argv, *req.qemu_options], check=False).returncode
    return 128 - code if code < 0 else code


def _cmd(config_file: Path) -> list[str]:
    config: Any = json.loads(config_file.read_bytes())
    cmd = (config.get("config") or {}).get("Cmd") or []
    return [str(c) for c in cmd]
