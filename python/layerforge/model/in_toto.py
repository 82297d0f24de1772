"""in-toto attestations (Statement v1): the names and the one statement shape that what writes
statements (the build's SLSA provenance) and what signs and reads them (cosign attestations)
share, and the reading of a statement's subject digests, as hostile input."""

from __future__ import annotations

from typing import Any

#: The media type of a statement: a DSSE envelope's payloadType, and an artifact's type.
MEDIA_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
#: The annotation naming an in-toto artifact's predicate type (as the referrers API lists it).
PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type"


def statement(name: str, sha256_hex: str, predicate_type: str, predicate: Any) -> dict[str, Any]:
    """A statement about the one subject ``name`` whose sha256 is ``sha256_hex``."""
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": sha256_hex}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def subject_sha256s(doc: dict[str, Any]) -> list[str]:
    """The sha256 digests (hex) a statement's subjects name; whatever else is there (a subject
    that is no object, a digest that is no object) names none."""
    subjects = doc.get("subject")
    out = []
    for s in subjects if isinstance(subjects, list) else ():
        digest = s.get("digest") if isinstance(s, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if isinstance(value, str):
            out.append(value)
    return out
