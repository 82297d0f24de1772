"""``layerforge unikraft-extract``: a platform's kernel, initrd and kconfig out of a package."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from layerforge.images.unikraft.extract import extract_unikraft
from layerforge.model.reference import parse_layout_ref


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "unikraft-extract",
        help="write a unikernel package's kernel, initrd and kconfig to a directory",
        description="Write the kernel, initrd (if any), kconfig and config.json of one platform of the "
        "unikernel package LAYOUT[:REF] into DIR, as `kraft run` would find them.",
    )
    p.add_argument("image", metavar="LAYOUT[:REF]", help="OCI layout and reference of the package")
    p.add_argument("--plat", required=True, metavar="PLAT", help="platform (qemu, fc, xen, ...)")
    p.add_argument("--arch", required=True, metavar="ARCH", help="architecture (x86_64, arm64, arm)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write into")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = extract_unikraft(parse_layout_ref(args.image), args.plat, args.arch, args.out)
    for name, path in sorted(result.files.items()):
        print(f"{name} {path}")
    return 0
