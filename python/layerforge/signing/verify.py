"""Verifying an image's cosign signatures and attestations with a public key. A signature
counts when its payload's bytes match the layer's digest, the signature over them verifies
with the key, and the payload names the image's digest; an attestation counts when its DSSE
envelope verifies with the key and its statement is about the image. Anything else (no
object, no layer that verifies, a payload naming another digest: the manifest changed after
signing) fails in one line."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from layerforge._native import verify_signature
from layerforge.errors import LayerforgeError
from layerforge.model import in_toto
from layerforge.model.digest import digest_hex
from layerforge.signing import dsse, simple_signing
from layerforge.signing.cosign_objects import ATTESTATIONS, SIGNATURE_ANNOTATION, SIGNATURES
from layerforge.signing.store import CosignStore


class VerifyError(LayerforgeError):
    """No signature or attestation of the image verifies with the key."""


@dataclass(frozen=True)
class Verified:
    subject: str
    docker_reference: str | None = None  # a signature's
    predicate_type: str | None = None  # an attestation's
    statement: dict[str, Any] | None = None


def verify_signatures(store: CosignStore, digest: str, public_key_pem: bytes, key_name: str) -> list[Verified]:
    tag = SIGNATURES.tag(digest)
    manifest = store.find(digest, SIGNATURES)
    if manifest is None:
        raise VerifyError(f"{store.where}: {digest} is not signed (no {tag})")
    out = []
    other_digest = None
    for layer in manifest.layers:
        sig = layer.annotations.get(SIGNATURE_ANNOTATION)
        if layer.media_type != SIGNATURES.layer_media_type or not sig:
            continue
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            payload = store.payload(layer)
        except LayerforgeError:  # a payload whose bytes are not its digest's
            continue
        if not verify_signature(public_key_pem, payload, signature):
            continue
        claims = simple_signing.read_payload(payload, f"{store.where}:{tag}")
        if claims.digest != digest:
            other_digest = claims.digest
            continue
        out.append(Verified(digest, docker_reference=claims.docker_reference))
    if not out:
        if other_digest is not None:
            raise VerifyError(f"{store.where}:{tag}: the signature verifies but names {other_digest}, not {digest}")
        raise VerifyError(f"{store.where}: no signature of {digest} verifies with {key_name}")
    return out


def verify_attestations(
    store: CosignStore, digest: str, public_key_pem: bytes, key_name: str, predicate_type: str | None = None
) -> list[Verified]:
    tag = ATTESTATIONS.tag(digest)
    manifest = store.find(digest, ATTESTATIONS)
    if manifest is None:
        raise VerifyError(f"{store.where}: {digest} has no attestations (no {tag})")
    out = []
    for layer in manifest.layers:
        if layer.media_type != ATTESTATIONS.layer_media_type:
            continue
        where = f"{store.where}:{tag} layer {layer.digest}"
        try:
            opened = dsse.open_envelope(store.payload(layer), public_key_pem, where)
        except LayerforgeError:
            continue
        doc = _statement(opened, where)
        if digest_hex(digest) not in in_toto.subject_sha256s(doc):
            continue
        if predicate_type is not None and doc["predicateType"] != predicate_type:
            continue
        out.append(Verified(digest, predicate_type=doc["predicateType"], statement=doc))
    if not out:
        wanted = f" of type {predicate_type}" if predicate_type else ""
        raise VerifyError(f"{store.where}: no attestation{wanted} of {digest} verifies with {key_name}")
    return out


def _statement(opened: dsse.Opened, where: str) -> dict[str, Any]:
    if opened.payload_type != in_toto.MEDIA_TYPE:
        raise VerifyError(f"{where}: the envelope holds {opened.payload_type}, not an in-toto statement")
    try:
        doc = json.loads(opened.body)
    except (ValueError, RecursionError):
        raise VerifyError(f"{where}: the statement is not JSON") from None
    if (
        not isinstance(doc, dict)
        or doc.get("_type") != in_toto.STATEMENT_V1
        or not isinstance(doc.get("subject"), list)
        or not isinstance(doc.get("predicateType"), str)
    ):
        raise VerifyError(f"{where}: not an in-toto statement v1")
    return doc
