"""``layerforge push LAYOUT_DIR[:REF] REGISTRY/REPO[:TAG|@DIGEST]``: push an image to a registry."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from layerforge.cli.progress import ProgressBar
from layerforge.cli.push_dry_run import run_dry
from layerforge.cli.registry_options import jobs_and_retries
from layerforge.errors import UsageError
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.reference import split_layout_ref
from layerforge.option_flags import checked, default, high
from layerforge.record.publish import add_push, push_entry
from layerforge.registry import credentials
from layerforge.registry.client import MANIFEST_ACCEPT, RegistryClient
from layerforge.registry.connect import target_client
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.push import BlobResult, PushResult, default_known_blobs_path, push_image
from layerforge.registry.receipt import forget_receipt, index_digest, receipt_key, write_receipt
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import DEFAULT_TIMEOUT, TIMEOUT_ENV, UPLOAD_UNIT, RetryPolicy, request_timeout
from layerforge.signing.keys import load_signing_key
from layerforge.signing.push_signing import push_cosign_objects, sign_pushed

#: Bounds of the options (layerforge.option_rules): enough for any real push, small enough
#: that no value can hang it (a 0-byte chunk never ends; 100000 workers exhaust the machine).
MAX_JOBS = high("push.jobs")
MAX_RETRIES = high("push.retries")
DEFAULT_JOBS = int(default("push.jobs"))
DEFAULT_RETRIES = int(default("push.retries"))


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "push",
        help="push an image from a layout to a registry",
        description="Push LAYOUT_DIR[:REF] (an image manifest or index, with its SBOM and other referrers) to "
        "REGISTRY/REPO[:TAG|@DIGEST]. Blobs the registry has are skipped, blobs it has in another repository are "
        "mounted; manifests are published only after every blob is confirmed. A blob absent from the layout must "
        "already be in the registry (or mounted there). Logins come from where podman "
        "and docker keep them (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, "
        "/run/containers/UID/auth.json, ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or "
        "~/.docker/config.json, credential helpers included) and go to the registry's own origin only; its CA "
        "may be in /etc/containers/certs.d/HOST[:PORT]/ (or /etc/docker/certs.d, ~/.config/containers/certs.d, "
        "with client certificates for mutual TLS) or SSL_CERT_FILE; registries.conf may call it insecure. "
        "Every request must finish within "
        f"${TIMEOUT_ENV} seconds (default {DEFAULT_TIMEOUT:g}; uploads get that much per "
        f"{UPLOAD_UNIT >> 20} MiB they carry).",
    )
    p.add_argument("source", metavar="LAYOUT_DIR[:REF]")
    p.add_argument("target", metavar="REGISTRY/REPO[:TAG|@DIGEST]")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="also tag the image as TAG (repeatable)")
    p.add_argument("--insecure", action="store_true", help="plain HTTP (loopback registries always use it)")
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"blobs uploaded at once, 1 to {MAX_JOBS} (default {DEFAULT_JOBS})",
    )
    p.add_argument(
        "--chunk-size",
        metavar="SIZE",
        help="chunked uploads of SIZE, 64KiB to 4GiB (e.g. 8MiB); default monolithic",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help=f"attempts per request, 1 to {MAX_RETRIES} (default {DEFAULT_RETRIES})",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request (never credentials)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only list the blobs, manifests and tags the push would send, after asking the registry (HEAD "
        "requests only, pull access) what it holds",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.add_argument(
        "--record",
        type=Path,
        metavar="FILE.json",
        help="add this push (references, digest, bytes pushed/mounted/skipped) to the publish record FILE.json",
    )
    p.add_argument(
        "--sign-key",
        metavar="KEY",
        help="sign every manifest and index pushed, in cosign's format (sha256-<hex>.sig), and attest the image "
        "with the SLSA provenance and SBOMs its layout holds (sha256-<hex>.att); KEY as for `layerforge sign`",
    )
    p.add_argument(
        "--source-revision",
        metavar="REV",
        help="with --sign-key: the source revision (git commit) the image was built from, added to its provenance",
    )
    p.set_defaults(run=run)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def summary(result: PushResult) -> list[str]:
    streamed = result.count("streamed")
    relayed = f", {streamed} streamed ({_mib(result.bytes('streamed'))})" if streamed else ""
    lines = [
        f"blobs: {result.count('pushed')} pushed ({_mib(result.bytes('pushed'))}), "
        f"{result.count('skipped')} skipped, {result.count('mounted')} mounted{relayed}; "
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


def chunk_size(value: str | None) -> int | None:
    return None if value is None else int(checked("--chunk-size", "push.chunk_size", value))


def unchanged(result: PushResult) -> PushResult:
    """Pushing the same image again, with everything in place."""
    return PushResult(
        target=result.target,
        digest=result.digest,
        tags=dict.fromkeys(result.tags, "unchanged"),
        blobs=[BlobResult(d, s, "skipped") for d, s in sorted(result.image_blobs.items())],
        referrers=list(result.referrers),
    )


def unchanged_summary(result: PushResult) -> list[str]:
    """What pushing the same image again, with everything in place, prints."""
    return summary(unchanged(result))


def receipt_document(
    result: PushResult, layout_dir: str, index_bytes: bytes, argv: list[str], record: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The receipt; ``record`` (the ``--record`` file and the push's source) gives it the
    entry an unchanged re-push adds to that publish record (the native command writes it)."""
    lines = unchanged_summary(result)
    entry = None if record is None else {"path": record[0], "entry": push_entry(unchanged(result), record[1])}
    return {
        "record": entry,
        "argv": argv,
        # As the command line names it (relative to where it runs, as the push read it).
        "layout": layout_dir,
        "registry": result.target.registry,
        "repository": result.target.repository,
        "tags": list(result.tags),
        "root": result.digest,
        "index": {"digest": index_digest(index_bytes)},
        "blobs": dict(sorted(result.blob_set.items())),
        "documents": sorted(set(result.documents)),
        "referrers": [
            {
                "digest": r,
                "listing": None if (ls := result.listings.get(r)) is None else {"tag": ls[0], "digest": ls[1]},
            }
            for r in result.referrers
        ],
        "accept": MANIFEST_ACCEPT,
        "report": {"stderr": lines[:1], "stdout": lines[1:]},
    }


def _record_arg(argv: list[str]) -> str | None:
    """The ``--record`` value as the command line spells it (what the native command
    compares); None when it is spelled otherwise (an abbreviation, which the native command
    leaves to Python anyway)."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a.startswith("--record="):
            return a.removeprefix("--record=")
        if a == "--record" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _index_bytes(layout: OciLayout) -> bytes | None:
    try:
        return layout.index_path.read_bytes()
    except OSError:
        return None


def _settle_receipt(
    args: argparse.Namespace,
    key: str,
    *,
    argv: list[str],
    layout: OciLayout,
    layout_dir: str,
    index_before: bytes | None,
    result: PushResult,
    plain_http: bool,
    signed: bool,
) -> None:
    """Write the receipt the native command answers a re-push from, or forget it. Only what
    that command can check: plain HTTP, tags, no -v, an index unchanged, no signatures (they
    merge with what the registry holds, so a re-push always asks it)."""
    plain = plain_http and result.tags and not args.verbose and not result.target.digest
    spelled = None if args.record is None else _record_arg(argv)
    record = None if spelled is None else (spelled, args.source)
    unread = args.record is not None and record is None
    if plain and not signed and not unread and index_before is not None and _index_bytes(layout) == index_before:
        write_receipt(key, receipt_document(result, layout_dir, index_before, argv[1:], record))
    else:
        forget_receipt(key)


def _check_flags(args: argparse.Namespace) -> None:
    """Flags that only go with others."""
    if args.json and not args.dry_run:
        raise UsageError("--json", "only applies to --dry-run")
    if args.dry_run and args.record is not None:
        raise UsageError("--record", "a dry run pushes nothing to record")
    if args.dry_run and args.sign_key is not None:
        raise UsageError("--sign-key", "a dry run pushes nothing to sign")
    if args.source_revision and not args.sign_key:
        raise UsageError("--source-revision", "only applies with --sign-key")


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    if args.dry_run:
        return run_dry(args)
    signing_key = load_signing_key(args.sign_key) if args.sign_key else None
    level = logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="layerforge: %(message)s", stream=sys.stderr)
    layout_dir, ref = split_layout_ref(args.source)
    target = parse_image_name(args.target)
    jobs, retries = jobs_and_retries(args)
    chunk = chunk_size(args.chunk_size)
    deadline = request_timeout(os.environ)
    layout = OciLayout.open(Path(layout_dir))
    client = target_client(target, insecure=args.insecure, retries=retries, timeout=deadline, chunk_size=chunk)
    bar = ProgressBar("push")
    argv = list(getattr(args, "argv", None) or [])
    key = receipt_key(argv[1:], os.environ) if argv[:1] == ["push"] else None
    index_before = _index_bytes(layout)

    def blob_done(b: BlobResult) -> None:
        if bar.enabled:  # one line per blob above the bar on a terminal
            sys.stderr.write(f"\r\033[K  {b.action:8} {b.digest[:19]}  {_mib(b.size):>10}\n")
        elif args.verbose:  # and with -v anywhere else; through the log's handler, whose lock
            # keeps the line whole among the request lines other threads log
            logging.getLogger("layerforge.push").info("blob %s %s (%d bytes)", b.action, b.digest, b.size)

    try:
        result = push_image(
            layout,
            ref,
            target,
            client,
            extra_tags=tuple(args.tag),
            jobs=jobs,
            known=KnownBlobs(default_known_blobs_path()),
            progress=bar,
            on_blob=blob_done,
            sources=lambda registry: RegistryClient(
                registry,
                credentials=credentials.lookup(registry),
                retry=RetryPolicy(attempts=retries),
                timeout=deadline,
                pull_only=True,
            ),
        )
        signed = push_cosign_objects(layout, client, result)
        if signing_key is not None:
            signed += sign_pushed(layout, client, result, signing_key, args.source_revision)
    except BaseException:
        if key is not None:
            forget_receipt(key)
        raise
    finally:
        bar.close()
        client.close()
    if key is not None:
        _settle_receipt(
            args,
            key,
            argv=argv,
            layout=layout,
            layout_dir=layout_dir,
            index_before=index_before,
            result=result,
            plain_http=client.transport.scheme == "http",
            signed=bool(signed),
        )
    if args.record is not None:
        add_push(args.record, push_entry(result, args.source))
    lines = summary(result)
    print(lines[0], file=sys.stderr)
    for line in lines[1:]:
        print(line)
    where = f"{result.target.registry}/{result.target.repository}"
    for s in signed:
        print(f"{where}:{s.tag} {s.digest} ({'added' if s.added else 'unchanged'})")
    return 0
