"""DSSE envelopes (secure-systems-lab/dsse v1): the payload is signed through its
pre-authentication encoding, ``DSSEv1 <len(type)> <type> <len(body)> <body>``, and the
envelope carries it base64-encoded with its signatures. cosign's attestations are DSSE
envelopes of in-toto statements with one signature and an empty ``keyid``."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from layerforge._native import SigningKey, verify_signature
from layerforge.errors import LayerforgeError
from layerforge.model import in_toto

MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type: str, body: bytes) -> bytes:
    """The pre-authentication encoding: what the signature is computed over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def envelope(body: bytes, key: SigningKey, payload_type: str = in_toto.MEDIA_TYPE) -> bytes:
    """A one-signature envelope of ``body``, encoded as cosign encodes it."""
    sig = key.sign(pae(payload_type, body))
    doc = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Opened:
    payload_type: str
    body: bytes


def open_envelope(data: bytes, public_key_pem: bytes, where: str) -> Opened:
    """The envelope's payload when one of its signatures verifies with the key (read as
    hostile input); a one-line error otherwise."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise LayerforgeError(f"{where}: not a JSON DSSE envelope") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("payloadType"), str):
        raise LayerforgeError(f"{where}: not a DSSE envelope (no payloadType)")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list):
        raise LayerforgeError(f"{where}: not a DSSE envelope (no signatures)")
    try:
        body = base64.b64decode(doc.get("payload", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise LayerforgeError(f"{where}: the envelope's payload is not base64") from None
    message = pae(doc["payloadType"], body)
    for s in sigs:
        raw = s.get("sig") if isinstance(s, dict) else None
        if not isinstance(raw, str):
            continue
        try:
            sig = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            continue
        if verify_signature(public_key_pem, message, sig):
            return Opened(doc["payloadType"], body)
    raise LayerforgeError(f"{where}: no signature of the envelope verifies with the key")
