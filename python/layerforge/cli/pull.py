"""``layerforge pull REGISTRY/REPO[:TAG][@DIGEST] --out LAYOUT_DIR``: pull an image into a layout."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layerforge.cli.progress import ProgressBar
from layerforge.cli.push import (
    DEFAULT_JOBS,
    DEFAULT_RETRIES,
    MAX_JOBS,
    MAX_RETRIES,
    _mib,
)
from layerforge.cli.registry_options import jobs_and_retries
from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.oci_layout import open_for_write
from layerforge.model.reference import DEFAULT_TAG, validate_ref
from layerforge.registry import credentials, registries_conf
from layerforge.registry.blob_sink import BlobRefused
from layerforge.registry.client import RegistryClient
from layerforge.registry.connect import transport_options
from layerforge.registry.pull import PullResult, parse_platform, pull_image
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import DEFAULT_TIMEOUT, TIMEOUT_ENV, RetryPolicy, request_timeout
from layerforge.trust.json_shape import ShapeError

log = logging.getLogger("layerforge.pull")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "pull",
        help="pull an image from a registry into a layout",
        description="Pull REGISTRY/REPO[:TAG][@DIGEST] into the OCI layout LAYOUT_DIR, keeping the registry's "
        "manifest and index bytes (and so their digests). Every blob is checked against its digest while it "
        "streams in; blobs the layout already has are skipped. An interrupted pull keeps the blobs it verified, "
        "and the next pull into the same directory fetches only the rest; one refused for its content leaves no "
        "layout behind. An index is pulled for the host's platform unless --platform or --all-platforms says "
        "otherwise. Credentials come from the same places as for push and go to the registry's own origin only; "
        f"every request must finish within ${TIMEOUT_ENV} seconds (default {DEFAULT_TIMEOUT:g}; downloads get "
        "that much per 16 MiB). Prints LAYOUT:TAG and the digest; for a tag, also the digest it resolved to.",
    )
    p.add_argument("image", metavar="REGISTRY/REPO[:TAG][@DIGEST]")
    p.add_argument("--out", required=True, type=Path, metavar="LAYOUT_DIR", help="layout to write (created if absent)")
    p.add_argument("--tag", metavar="NAME", help="reference name in the layout (default: the tag, or latest)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]", help="platform of an index (repeatable)"
    )
    which.add_argument("--all-platforms", action="store_true", help="the whole index, as the registry holds it")
    p.add_argument(
        "--shallow",
        action="store_true",
        help="manifests and configs only: layer blobs stay in the registry (index.json says so); enough to build "
        "an image on this one, not to run or export it",
    )
    p.add_argument("--insecure", action="store_true", help="plain HTTP (loopback registries always use it)")
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"blobs fetched at once, 1 to {MAX_JOBS} (default {DEFAULT_JOBS})",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help=f"attempts per request, 1 to {MAX_RETRIES} (default {DEFAULT_RETRIES})",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request (never credentials)")
    p.set_defaults(run=run)


def _keeper(out: Path) -> Callable[[BaseException], bool]:
    """A pull that failed for what the registry sent leaves nothing; any other failure
    (interrupted, unreachable registry) keeps the blobs it verified, to resume from."""

    def keep(error: BaseException) -> bool:
        if isinstance(error, (BlobRefused, ShapeError, UsageError)):
            return False
        blobs = out / "blobs" / "sha256"
        return blobs.is_dir() and any(blobs.iterdir())

    return keep


def _first_that_pulls(
    sources: list[registries_conf.Source], pull_from: Callable[[registries_conf.Source], PullResult]
) -> PullResult:
    """The pull from the first source that serves it: mirrors (registries.conf) that fail, or
    send what their digests refuse, give way to the next source; the last one's error stands."""
    for source in sources[:-1]:
        try:
            return pull_from(source)
        except UsageError:
            raise
        except LayerforgeError as e:
            log.warning("mirror %s: %s; trying the next source", source.name.registry, e)
    return pull_from(sources[-1])


def run(args: argparse.Namespace) -> int:
    level = logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="layerforge: %(message)s", stream=sys.stderr)
    name = parse_image_name(args.image, "IMAGE")
    try:
        tag = validate_ref(args.tag, "--tag") if args.tag is not None else name.tag or DEFAULT_TAG
    except LayerforgeError as e:
        raise UsageError("--tag", str(e).removeprefix("--tag: ")) from None
    platforms = [parse_platform(p) for p in args.platform]
    jobs, retries = jobs_and_retries(args)
    deadline = request_timeout(os.environ)
    sources = registries_conf.pull_sources(name, registries_conf.load())
    bar = ProgressBar("pull")

    def blob_done(digest: str, size: int, action: str) -> None:
        if bar.enabled:
            sys.stderr.write(f"\r\033[K  {action:8} {digest[:19]}  {_mib(size):>10}\n")

    def pull_from(source: registries_conf.Source) -> PullResult:
        registry = source.name.registry
        options = transport_options(
            registry, insecure=args.insecure and not source.mirror, conf_insecure=source.insecure, timeout=deadline
        )
        client = RegistryClient(
            registry,
            credentials=credentials.lookup(registry),
            **options,
            retry=RetryPolicy(attempts=retries),
            timeout=deadline,
            pull_only=True,
        )
        try:
            with open_for_write(args.out, keep=_keeper(args.out)) as layout:
                return pull_image(
                    client,
                    source.name,
                    layout,
                    tag=tag,
                    platforms=platforms,
                    all_platforms=args.all_platforms,
                    shallow=args.shallow,
                    jobs=jobs,
                    progress=bar,
                    on_blob=blob_done,
                )
        finally:
            client.close()

    try:
        result = _first_that_pulls(sources, pull_from)
    finally:
        bar.close()
    print(
        f"blobs: {len(result.fetched)} fetched ({_mib(sum(result.fetched.values()))}), "
        f"{len(result.present)} already present",
        file=sys.stderr,
    )
    print(f"{args.out}:{tag} {result.descriptor.digest}")
    if name.digest is None:
        print(f"{name} resolved to {result.resolved}")
    return 0
