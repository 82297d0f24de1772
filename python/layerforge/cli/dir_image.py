"""``layerforge dir-image ROOTFS_DIR --out LAYOUT_DIR``: a single-layer image from a directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from layerforge.cli.args import add_runtime_options, add_threads_option, runtime_config
from layerforge.cli.output_format import add_output_options, name_output
from layerforge.cli.progress import ProgressBar
from layerforge.images.dir.build import DirImageRequest, build_dir_image
from layerforge.layers.build import COMPRESSIONS, DEFAULT_COMPRESSION
from layerforge.model.platform import LINUX_ARCHES
from layerforge.model.reference import DEFAULT_TAG
from layerforge.option_rules import DEFAULT_LEVELS, LEVELS

#: The levels each compression takes, and its default: "gzip 1-9, default 6; ...".
_LEVELS = "; ".join(f"{c} {low}-{high}, default {DEFAULT_LEVELS[c]}" for c, (low, high) in LEVELS.items())


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "dir-image",
        help="build a single-layer image from a directory",
        description="Build a single-layer OCI image from ROOTFS_DIR into the OCI layout LAYOUT_DIR. "
        "Entries are sorted, owned by root, dated SOURCE_DATE_EPOCH (default 1): the same tree "
        "gives the same digests on any machine.",
    )
    p.add_argument("rootfs", metavar="ROOTFS_DIR", type=Path, help="directory holding the image's root filesystem")
    p.add_argument(
        "--out",
        required=True,
        metavar="LAYOUT_DIR",
        type=Path,
        help="OCI layout to write (created if absent)",
    )
    p.add_argument(
        "--tag",
        default=DEFAULT_TAG,
        metavar="REF",
        help=f"reference name in the layout (default {DEFAULT_TAG})",
    )
    p.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"layer compression (default {DEFAULT_COMPRESSION})",
    )
    p.add_argument("--level", type=int, metavar="N", help=f"compression level ({_LEVELS})")
    p.add_argument("--arch", choices=tuple(LINUX_ARCHES), default="amd64", help="image architecture (default amd64)")
    p.add_argument("--source", metavar="URL", help="org.opencontainers.image.source annotation")
    p.add_argument("--revision", metavar="REV", help="org.opencontainers.image.revision annotation")
    p.add_argument("--keep-setuid", action="store_true", help="keep setuid/setgid bits (dropped by default)")
    add_threads_option(p)
    add_runtime_options(p)
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    req = DirImageRequest(
        rootfs=args.rootfs,
        ref=args.tag,
        arch=args.arch,
        compression=args.compression,
        level=args.level,
        runtime=runtime_config(args),
        source=args.source,
        revision=args.revision,
        keep_setuid=args.keep_setuid,
        threads=args.threads,
    )
    bar = ProgressBar("dir-image")
    try:
        result = build_dir_image(args.out, req, progress=bar)
    finally:
        bar.close()
    name_output(args.out, result.ref, args.image_name)
    print(f"{args.out}:{result.ref} {result.manifest.digest}")
    return 0
