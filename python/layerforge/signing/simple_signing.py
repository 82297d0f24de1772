"""The payload a cosign signature signs (cosign's SIGNATURE_SPEC, "Simple Signing"): the
manifest digest and the repository, with ``critical.type`` naming cosign. Encoded as cosign
encodes it (Go's encoding/json: keys in this order, no spaces), so a payload for the same
image is the same bytes whichever tool writes it."""

from __future__ import annotations

import json
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


def signed_digest(data: bytes, where: str) -> str:
    """The manifest digest a payload names (read as hostile input; key case as the
    containers-signature format allows: ``docker-manifest-digest``, any case)."""
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
    return digests[0]
