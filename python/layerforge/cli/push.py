"""``layerforge push LAYOUT_DIR[:REF] REGISTRY/REPO[:TAG|@DIGEST]``: push an image to a registry."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from layerforge.cli.progress import ProgressBar
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.reference import parse_layout_ref
from layerforge.registry import credentials
from layerforge.registry.client import RegistryClient
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.push import BlobResult, PushResult, default_known_blobs_path, push_image
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import RetryPolicy
from layerforge.units import parse_size


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "push",
        help="push an image from a layout to a registry",
        description="Push LAYOUT_DIR[:REF] (an image manifest or index, with its SBOM and other referrers) to "
        "REGISTRY/REPO[:TAG|@DIGEST]. Blobs the registry has are skipped, blobs it has in another repository are "
        "mounted; manifests are published only after every blob is confirmed. Credentials come from "
        "$REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json (credential helpers included).",
    )
    p.add_argument("source", metavar="LAYOUT_DIR[:REF]")
    p.add_argument("target", metavar="REGISTRY/REPO[:TAG|@DIGEST]")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="also tag the image as TAG (repeatable)")
    p.add_argument("--insecure", action="store_true", help="plain HTTP (loopback registries always use it)")
    p.add_argument("--jobs", type=int, default=4, metavar="N", help="blobs uploaded at once (default 4)")
    p.add_argument("--chunk-size", metavar="SIZE", help="chunked uploads of SIZE (e.g. 8MiB); default monolithic")
    p.add_argument("--retries", type=int, default=8, metavar="N", help="attempts per request (default 8)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request (never credentials)")
    p.set_defaults(run=run)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def summary(result: PushResult) -> list[str]:
    lines = [
        f"blobs: {result.count('pushed')} pushed ({_mib(result.bytes('pushed'))}), "
        f"{result.count('skipped')} skipped, {result.count('mounted')} mounted; "
        f"{result.manifests_pushed} manifests written"
    ]
    target = f"{result.target.registry}/{result.target.repository}"
    for tag, action in result.tags.items():
        lines.append(f"{target}:{tag} {result.digest} ({action})")
    if not result.tags:
        lines.append(f"{target}@{result.digest}")
    for r in result.referrers:
        lines.append(f"referrer {r}")
    return lines


def run(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="layerforge: %(message)s", stream=sys.stderr)
    source = parse_layout_ref(args.source)
    target = parse_image_name(args.target)
    chunk = parse_size(args.chunk_size, "--chunk-size") if args.chunk_size else None
    layout = OciLayout.open(source.path)
    client = RegistryClient(
        target.registry,
        credentials=credentials.lookup(target.registry),
        insecure=args.insecure,
        retry=RetryPolicy(attempts=max(1, args.retries)),
        chunk_size=chunk,
    )
    bar = ProgressBar("push")

    def blob_done(b: BlobResult) -> None:
        if bar.enabled:  # one line per blob above the bar, on a terminal only
            sys.stderr.write(f"\r\033[K  {b.action:8} {b.digest[:19]}  {_mib(b.size):>10}\n")

    try:
        result = push_image(
            layout,
            source.ref,
            target,
            client,
            extra_tags=tuple(args.tag),
            jobs=args.jobs,
            known=KnownBlobs(default_known_blobs_path()),
            progress=bar,
            on_blob=blob_done,
        )
    finally:
        bar.close()
        client.close()
    lines = summary(result)
    print(lines[0], file=sys.stderr)
    for line in lines[1:]:
        print(line)
    return 0
