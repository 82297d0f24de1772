"""``layerforge export-docker LAYOUT_DIR[:REF] --out FILE.tar``: a ``docker load`` archive."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from layerforge.cli.progress import ProgressBar
from layerforge.layout.docker_archive import export_docker_archive
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.epoch import source_date_epoch
from layerforge.model.reference import parse_layout_ref


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "export-docker",
        help="write an image as a `docker load` archive",
        description="Write LAYOUT_DIR[:REF] as a docker-archive tarball (docker load, podman load, "
        "skopeo docker-archive:). Layers are stored uncompressed and verified against their digests.",
    )
    p.add_argument("target", metavar="LAYOUT_DIR[:REF]")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.tar", help="archive to write (atomically)")
    p.add_argument(
        "--tag",
        action="append",
        metavar="NAME:TAG",
        help="RepoTags entry (repeatable; default: REF when it is a NAME:TAG)",
    )
    p.add_argument("--platform", metavar="OS/ARCH", help="pick one image of a multi-platform index")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    target = parse_layout_ref(args.target)
    layout = OciLayout.open(target.path)
    bar = ProgressBar("export-docker")
    try:
        result = export_docker_archive(
            layout,
            target.ref,
            args.out,
            repo_tags=args.tag or (),
            platform=args.platform,
            epoch=source_date_epoch(),
            progress=bar,
        )
    finally:
        bar.close()
    tags = " ".join(result.repo_tags) or "(untagged)"
    print(f"{result.path} {result.manifest.digest} {tags}")
    return 0
