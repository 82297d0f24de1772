"""The payload a cosign signature signs (cosign's SIGNATURE_SPEC, "Simple Signing"): the
manifest digest and the repository, with ``critical.type`` naming cosign. Encoded as cosign
encodes it (Go's encoding/json: keys in this order, no spaces), so a payload for the same
image is the same bytes whichever tool writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from layerforge.errors import LayerforgeError

MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
TYPE = "cosign container image signature"
#: What a payload blob may weigh when read back (cosign's are ~200 bytes).
MAX_PAYLOAD = 64 << 10


def payload(docker_reference: str, manifest_digest: str) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Claims:
    """What a signed payload says: the manifest digest, and the repository (None when it
    names none, or not as a string)."""

    digest: str
    docker_reference: str | None


def read_payload(data: bytes, where: str) -> Claims:
    """What a payload claims, read as hostile input (the digest's key in any case, as the
    containers-signature format allows: ``docker-manifest-digest``)."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError):
        raise LayerforgeError(f"{where}: the signed payload is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != TYPE:
        raise LayerforgeError(f"{where}: the signed payload is not a cosign container image signature")
    image = critical.get("image")
    digests = [v for k, v in image.items() if k.lower() == "docker-manifest-digest"] if isinstance(image, dict) else []
    if len(digests) != 1 or not isinstance(digests[0], str):
        raise LayerforgeError(f"{where}: the signed payload names no manifest digest")
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    return Claims(digests[0], reference if isinstance(reference, str) else None)
