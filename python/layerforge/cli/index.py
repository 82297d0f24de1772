"""``layerforge index``: an OCI image index of images (or indexes) from other layouts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from layerforge.cli.output_format import add_output_options, name_output
from layerforge.errors import UsageError
from layerforge.images.index.build import IndexSource, build_index
from layerforge.layout.oci_layout import open_for_write
from layerforge.model.reference import DEFAULT_TAG, parse_layout_ref


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "index",
        help="write an image index of images from other layouts (one entry per platform, from each config)",
    )
    p.add_argument("images", nargs="+", metavar="LAYOUT[:REF]", help="image manifests or indexes (flattened)")
    p.add_argument("--out", required=True, type=Path, metavar="LAYOUT_DIR", help="layout to write the index into")
    p.add_argument("--tag", default=DEFAULT_TAG, metavar="REF", help=f"reference of the index (default {DEFAULT_TAG})")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME",
        help="how errors name the images, in order (default: LAYOUT:REF)",
    )
    p.add_argument("--source", metavar="URL", help="org.opencontainers.image.source annotation of the index")
    p.add_argument("--revision", metavar="REV", help="org.opencontainers.image.revision annotation of the index")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if len(args.label) > len(args.images):
        raise UsageError("--label", f"{len(args.label)} labels for {len(args.images)} images")
    labels = [*args.label, *[""] * (len(args.images) - len(args.label))]
    sources = [IndexSource(parse_layout_ref(image), label) for image, label in zip(args.images, labels)]
    with open_for_write(args.out) as layout:
        result = build_index(layout, sources, args.tag, source=args.source, revision=args.revision)
    name_output(args.out, result.ref, args.image_name)
    print(f"{args.out}:{result.ref} {result.descriptor.digest}")
    for e in result.entries:
        print(f"  {e.descriptor.platform} {e.descriptor.digest} ({e.source.name})")
    return 0
