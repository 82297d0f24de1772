"""``layerforge sign --key KEY TARGET``: sign an image (an index and every image it lists)
in cosign's format, in a layout or in a registry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from layerforge.cli.signing_target import TARGET_METAVAR, add_reference_argument, add_target_arguments, open_target
from layerforge.errors import LayerforgeError
from layerforge.signing.keys import PASSWORD_ENV, load_signing_key
from layerforge.signing.sign import Signed, sign

KEY_HELP = (
    "the private key: a PKCS#8 PEM file (as openssl writes it), a key in cosign's encrypted format "
    f"(cosign generate-key-pair; its password in ${PASSWORD_ENV}), or env://VAR for a PEM held in VAR"
)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "sign",
        help="sign an image in cosign's format (a layout's or a registry's)",
        description=f"Sign TARGET ({TARGET_METAVAR}) with an ECDSA P-256 key, in cosign's format: a "
        "simple-signing payload naming the manifest digest and the repository, signed, in the "
        "sha256-<hex>.sig object (a registry tag; in a layout, an artifact next to the image that push "
        "carries). An index is signed with every image it lists. Signing again with the same key changes "
        "nothing.",
    )
    add_target_arguments(p)
    add_reference_argument(p)
    p.add_argument("--key", required=True, metavar="KEY", help=KEY_HELP)
    p.set_defaults(run=run)


def report(results: list[Signed], where: str) -> None:
    for r in results:
        state = "added" if r.added else "unchanged"
        print(f"{where}:{r.tag} {r.digest} ({state})")


def run(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    with open_target(args, write=True) as target:
        if target.repository is None:
            raise LayerforgeError(
                f"{args.target}: name the repository the signature is for with --reference REGISTRY/REPO"
            )
        results = sign(target.store, target.subjects, target.repository, key)
        report(results, target.store.where)
    print(f"signed {len(results)} manifest(s) as {target.repository}", file=sys.stderr)
    return 0
