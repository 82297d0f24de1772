"""``layerforge verify --key PUB TARGET``: check an image's cosign signatures (and, with
``--attestations``, its attestations) against a public key."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from layerforge.cli.signing_target import TARGET_METAVAR, add_target_arguments, open_target
from layerforge.signing.keys import read_public_key
from layerforge.signing.statements import TYPE_NAMES
from layerforge.signing.verify import Verified, verify_attestations, verify_signatures


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="verify an image's cosign signatures and attestations with a public key",
        description=f"Verify TARGET ({TARGET_METAVAR}): the image (and every image an index lists) must "
        "have a cosign signature that verifies with the public key and names its digest. Fails in one "
        "line on a missing signature, one by another key, or an image changed after signing.",
    )
    add_target_arguments(p)
    p.add_argument("--key", required=True, metavar="PUB", help="the public key PEM (cosign.pub), or env://VAR")
    p.add_argument(
        "--attestations", action="store_true", help="also verify the image's attestations (DSSE in-toto statements)"
    )
    p.add_argument(
        "--type", metavar="T", help=f"with --attestations: require one of this type ({', '.join(TYPE_NAMES)} or a URI)"
    )
    p.add_argument("--json", action="store_true", help="print what verified (and the statements) as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    pem = read_public_key(args.key)
    predicate_type = TYPE_NAMES.get(args.type, args.type) if args.type else None
    out: list[Verified] = []
    with open_target(args, write=False) as target:
        for subject in target.subjects:
            out += verify_signatures(target.store, subject.digest, pem, args.key)
        if args.attestations or predicate_type:
            out += verify_attestations(target.store, target.subjects[0].digest, pem, args.key, predicate_type)
    if args.json:
        doc = [
            {"digest": v.subject, "dockerReference": v.docker_reference, "predicateType": v.predicate_type,
             "statement": v.statement}
            for v in out
        ]  # fmt: skip
        print(json.dumps(doc, indent=2))
    else:
        for v in out:
            named = f" ({v.docker_reference})" if v.docker_reference else ""
            what = f"attestation {v.predicate_type}" if v.predicate_type else f"signature{named}"
            print(f"{v.subject}: {what} verified")
    print(f"verified with {args.key}", file=sys.stderr)
    return 0
