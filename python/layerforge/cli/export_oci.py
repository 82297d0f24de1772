"""``layerforge export-oci LAYOUT_DIR --out FILE.tar``: a layout as one oci-archive tar."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from layerforge.layout.oci_archive import write_oci_archive
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.epoch import source_date_epoch


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "export-oci",
        help="write a layout as one oci-archive tar",
        description="Write LAYOUT_DIR (index.json and every blob it reaches) as an oci-archive tarball "
        "(skopeo/podman oci-archive:, podman load, ctr images import, kraft). The same layout gives "
        "the same bytes (members sorted, owned by 0:0, dated SOURCE_DATE_EPOCH).",
    )
    p.add_argument("layout", type=Path, metavar="LAYOUT_DIR")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.tar", help="archive to write (atomically)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = write_oci_archive(OciLayout.open(args.layout), args.out, epoch=source_date_epoch())
    print(f"{result.path}: oci-archive of {args.layout}, {result.blobs} blobs, {result.size} bytes")
    return 0
