"""The in-toto statements (v1) an image is attested with, from the documents its layout
holds as referrers: the SLSA provenance statement the build wrote (its subject named by the
repository it is pushed to, and the source revision added when known), and each SBOM (SPDX
and CycloneDX) as the predicate of a statement about the image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.layout.artifact import referrers
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import in_toto, media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.digest import digest_hex

#: The predicate types cosign gives SBOMs (``cosign attest --type spdxjson`` / ``cyclonedx``).
PREDICATE_TYPES = {
    media_types.SPDX_JSON: "https://spdx.dev/Document",
    media_types.CYCLONEDX_JSON: "https://cyclonedx.org/bom",
}
#: ``--type`` names, as cosign spells them, and the predicate types they stand for.
TYPE_NAMES = {
    "slsaprovenance1": in_toto.SLSA_PROVENANCE_V1,
    "spdxjson": PREDICATE_TYPES[media_types.SPDX_JSON],
    "cyclonedx": PREDICATE_TYPES[media_types.CYCLONEDX_JSON],
}


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    body: bytes  # canonical JSON of the statement


def statement(name: str, digest: str, predicate_type: str, predicate: Any) -> Statement:
    doc = in_toto.statement(name, digest_hex(digest), predicate_type, predicate)
    return Statement(predicate_type, canonical_json(doc))


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise LayerforgeError(f"{where} is not JSON") from None


def from_statement(data: bytes, name: str, digest: str, where: str, source_revision: str | None) -> Statement:
    """A statement the build wrote, about ``digest``, re-subjected as ``name``."""
    doc = _json(data, where)
    if (
        not isinstance(doc, dict)
        or doc.get("_type") != in_toto.STATEMENT_V1
        or not isinstance(doc.get("predicateType"), str)
    ):
        raise LayerforgeError(f"{where} is not an in-toto statement v1")
    if digest_hex(digest) not in in_toto.subject_sha256s(doc):
        raise LayerforgeError(f"{where} is a statement about another image than {digest}")
    predicate = doc.get("predicate")
    if source_revision and doc["predicateType"] == in_toto.SLSA_PROVENANCE_V1 and isinstance(predicate, dict):
        build = predicate.setdefault("buildDefinition", {})
        deps = build.setdefault("resolvedDependencies", []) if isinstance(build, dict) else None
        if isinstance(deps, list):
            deps.append({"name": "source", "digest": {"gitCommit": source_revision}})
    return statement(name, digest, doc["predicateType"], predicate)


def layout_statements(layout: OciLayout, name: str, digest: str, source_revision: str | None = None) -> list[Statement]:
    """The statements the layout's documents about ``digest`` make: its provenance and SBOMs."""
    out = []
    for entry, manifest in referrers(layout, digest):
        if len(manifest.layers) != 1:
            continue
        payload = manifest.layers[0]
        if entry.artifact_type == in_toto.MEDIA_TYPE:
            data = layout.read_blob(payload.digest, payload.size)
            out.append(from_statement(data, name, digest, layout.where(payload, "statement"), source_revision))
        elif entry.artifact_type in PREDICATE_TYPES:
            data = layout.read_blob(payload.digest, payload.size)
            document = _json(data, layout.where(payload, "SBOM"))
            out.append(statement(name, digest, PREDICATE_TYPES[entry.artifact_type], document))
    return sorted(out, key=lambda s: (s.predicate_type, s.body))


def predicate_statement(path_bytes: bytes, where: str, type_name: str, name: str, digest: str) -> Statement:
    """``layerforge attest --predicate FILE --type T``: the file is the predicate."""
    predicate_type = TYPE_NAMES.get(type_name, type_name)
    if "://" not in predicate_type:
        names = ", ".join(TYPE_NAMES)
        raise LayerforgeError(f"--type: {type_name!r} is neither {names} nor a predicate type URI")
    return statement(name, digest, predicate_type, _json(path_bytes, where))
