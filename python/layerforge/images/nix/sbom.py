"""An SPDX 2.3 software bill of materials for a closure, stored next to the image as an
OCI artifact whose ``subject`` is the image manifest (so registries with the referrers API,
or the referrers tag schema, list it with the image)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from layerforge import __version__
from layerforge.errors import LayerforgeError
from layerforge.images.nix.closure import Closure
from layerforge.images.nix.store_path import parse_store_path
from layerforge.model.canonical_json import canonical_json
from layerforge.model.digest import sha256_digest
from layerforge.model.epoch import rfc3339

SPDX_TITLE = "sbom.spdx.json"
_NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"


def nar_hash_hex(nar_hash: str) -> str:
    """sha256 of a NAR as hex, from Nix's SRI (``sha256-<base64>``), ``sha256:<base32>`` or hex forms."""
    algo, sep, value = nar_hash.partition("-") if "-" in nar_hash[:7] else nar_hash.partition(":")
    if algo != "sha256" or not sep:
        raise LayerforgeError(f"unsupported narHash {nar_hash!r}")
    if len(value) == 64:
        return value.lower()
    if len(value) == 52:
        return _nix32_decode(value).hex()
    try:
        return base64.b64decode(value, validate=True).hex()
    except binascii.Error:
        raise LayerforgeError(f"unreadable narHash {nar_hash!r}") from None


def _nix32_decode(s: str) -> bytes:
    """Nix's base-32 (little-endian bit order, least significant character last)."""
    out = bytearray(32)
    for n, c in enumerate(reversed(s)):
        digit = _NIX32.index(c)
        b = n * 5
        i, j = divmod(b, 8)
        out[i] |= (digit << j) & 0xFF
        if i + 1 < 32:
            out[i + 1] |= digit >> (8 - j)
    return bytes(out)


def _spdx_id(path: str) -> str:
    return "SPDXRef-Nix-" + parse_store_path(path).hash


def spdx_document(closure: Closure, image_name: str, epoch: int) -> dict[str, Any]:
    packages = []
    for path in closure.paths:
        info = closure.infos[path]
        name = parse_store_path(path)
        pkg: dict[str, Any] = {
            "SPDXID": _spdx_id(path),
            "name": name.pname,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "packageFileName": path,
            "checksums": [{"algorithm": "SHA256", "checksumValue": nar_hash_hex(info.nar_hash)}],
            "comment": f"Nix store path {path}; NAR size {info.nar_size} bytes; NAR hash {info.nar_hash}",
            "primaryPackagePurpose": "LIBRARY" if path not in closure.roots else "APPLICATION",
        }
        if name.version:
            pkg["versionInfo"] = name.version
        if info.deriver:
            pkg["sourceInfo"] = f"built by Nix from {info.deriver}"
        packages.append(pkg)
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": _spdx_id(r)}
        for r in closure.roots
    ]
    for path in closure.paths:
        for ref in closure.refs(path):
            relationships.append(
                {"spdxElementId": _spdx_id(path), "relationshipType": "DEPENDS_ON", "relatedSpdxElement": _spdx_id(ref)}
            )
    identity = sha256_digest(canonical_json({"name": image_name, "paths": closure.paths})).split(":")[1]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image_name} Nix closure",
        "documentNamespace": f"https://layerforge.dev/spdx/nix-closure/{identity}",
        "creationInfo": {"created": rfc3339(epoch), "creators": [f"Tool: layerforge-{__version__}"]},
        "packages": packages,
        "relationships": relationships,
    }
