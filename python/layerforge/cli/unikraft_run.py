"""``layerforge unikraft-run LAYOUT[:REF] [-- ARGS]``: boot a unikernel package in QEMU as
``kraft run`` does, attached to this terminal; the exit status is QEMU's."""

from __future__ import annotations

import argparse
import os
from typing import Any

from layerforge.images.unikraft.boot import ACCELS, DEFAULT_MEMORY, BootRequest, boot_unikraft
from layerforge.images.unikraft.platforms import normalize_arch
from layerforge.model.reference import parse_layout_ref


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "unikraft-run",
        help="boot a unikernel package in QEMU the way kraft run does",
        description="Boot the qemu platform's kernel (and initrd) of the package LAYOUT[:REF] in QEMU with "
        "the console on this terminal and the package's Cmd (or ARGS) as application arguments. Options "
        "go before LAYOUT[:REF]; everything after it (after `--`) is ARGS.",
    )
    p.add_argument("target", metavar="LAYOUT[:REF]")
    p.add_argument("--arch", help="architecture of the kernel to boot (default: the host's)")
    p.add_argument("--memory", default=DEFAULT_MEMORY, help=f"guest memory (default {DEFAULT_MEMORY})")
    p.add_argument(
        "--accel", choices=ACCELS, default="tcg", help="tcg (emulation, default), kvm, or auto (KVM if usable)"
    )
    p.add_argument("--kernel-arg", action="append", default=[], metavar="=ARG", help="kernel argument (before --)")
    p.add_argument("--qemu", metavar="PATH", help="QEMU binary (default qemu-system-ARCH)")
    p.add_argument("--qemu-option", action="append", default=[], metavar="=ARG", help="extra QEMU argument")
    p.add_argument(
        "--nic",
        action="append",
        default=[],
        metavar="=SPEC",
        help="give the guest a network: a QEMU -nic value (--nic=user,model=virtio-net-pci); none by default",
    )
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="application arguments")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    arch = normalize_arch(args.arch or {"x86_64": "x86_64", "aarch64": "arm64"}.get(os.uname().machine, "x86_64"))
    request = BootRequest(
        target=parse_layout_ref(args.target),
        arch=arch,
        memory=args.memory,
        args=tuple(rest) or None,
        kernel_args=tuple(args.kernel_arg),
        qemu=args.qemu,
        qemu_options=tuple(args.qemu_option),
        accel=args.accel,
        nics=tuple(args.nic),
    )
    return boot_unikraft(request)
