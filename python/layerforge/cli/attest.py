"""``layerforge attest --key KEY TARGET``: attest an image with in-toto statements in DSSE
envelopes, as cosign stores attestations: by default the SLSA provenance and SBOMs the
layout holds for it, or ``--predicate FILE --type T``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from layerforge.cli.sign import KEY_HELP, report
from layerforge.cli.signing_target import TARGET_METAVAR, add_reference_argument, add_target_arguments, open_target
from layerforge.errors import LayerforgeError
from layerforge.signing.keys import load_signing_key
from layerforge.signing.sign import attest
from layerforge.signing.statements import TYPE_NAMES, layout_statements, predicate_statement
from layerforge.trust.blobs import MAX_DOCUMENT, read_document


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "attest",
        help="attest an image with its provenance and SBOMs (DSSE, cosign's format)",
        description=f"Attest TARGET ({TARGET_METAVAR}): each in-toto statement goes into a DSSE envelope "
        "signed with KEY, as a layer of the sha256-<hex>.att object. From a layout, the statements are "
        "the SLSA provenance the build wrote and its SBOMs (SPDX, CycloneDX); --predicate FILE --type T "
        "attests FILE instead (the only way for a registry image).",
    )
    add_target_arguments(p)
    add_reference_argument(p)
    p.add_argument("--key", required=True, metavar="KEY", help=KEY_HELP)
    p.add_argument("--predicate", type=Path, metavar="FILE", help="a JSON predicate to attest")
    p.add_argument(
        "--type",
        metavar="T",
        help=f"the predicate's type: {', '.join(TYPE_NAMES)}, or a URI (with --predicate)",
    )
    p.add_argument("--source-revision", metavar="REV", help="the source revision (git commit) the image was built from")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.predicate is None) != (args.type is None):
        raise LayerforgeError("--predicate and --type go together")
    key = load_signing_key(args.key)
    with open_target(args, write=True) as target:
        subject = target.subjects[0]
        name = target.repository or subject.digest
        if args.predicate is not None:
            data = read_document(args.predicate, f"--predicate {args.predicate}", limit=MAX_DOCUMENT, follow=True)
            statements = [predicate_statement(data, str(args.predicate), args.type, name, subject.digest)]
        elif target.layout is not None:
            statements = layout_statements(target.layout, name, subject.digest, args.source_revision)
            if not statements:
                raise LayerforgeError(f"{args.target}: the layout holds no provenance or SBOM for {subject.digest}")
        else:
            raise LayerforgeError(f"{args.target}: name what to attest with --predicate FILE --type T")
        result = attest(target.store, subject, statements, key)
        report([result], target.store.where)
    print(f"attested {subject.digest} with {len(statements)} statement(s)", file=sys.stderr)
    return 0
