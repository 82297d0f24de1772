"""A CycloneDX 1.5 software bill of materials for a closure: the same facts as the SPDX
document (:mod:`sbom`), one component per store path, stored next to it as another OCI
artifact referring to the image. Nothing in it depends on when or where it was made: the
timestamp is the build's epoch and the serial number is derived from the document itself."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from layerforge import __version__
from layerforge.images.nix.closure import Closure
from layerforge.images.nix.sbom import nar_hash_hex
from layerforge.images.nix.store_path import parse_store_path
from layerforge.model.canonical_json import canonical_json
from layerforge.model.epoch import rfc3339

CYCLONEDX_TITLE = "sbom.cdx.json"
#: Where the image itself sits in the document's dependency graph.
IMAGE_BOM_REF = "oci-image"


def _property(name: str, value: object) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _component(closure: Closure, path: str) -> dict[str, Any]:
    info = closure.infos[path]
    name = parse_store_path(path)
    properties = [
        _property("nix:store_path", path),
        _property("nix:nar_hash", info.nar_hash),
        _property("nix:nar_size", info.nar_size),
    ]
    if info.deriver:
        properties.append(_property("nix:deriver", info.deriver))
    component: dict[str, Any] = {
        "type": "application" if path in closure.roots else "library",
        "bom-ref": path,
        "name": name.pname,
        "hashes": [{"alg": "SHA-256", "content": nar_hash_hex(info.nar_hash)}],
        "properties": properties,
    }
    if name.version:
        component["version"] = name.version
    return component


def deterministic_serial(document: dict[str, Any]) -> str:
    """``urn:uuid:`` of a version-5-shaped UUID made from the sha256 of ``document`` (without
    its serial number): the same document always gets the same serial, another one another."""
    digest = hashlib.sha256(canonical_json({k: v for k, v in document.items() if k != "serialNumber"})).digest()
    return uuid.UUID(bytes=digest[:16], version=5).urn


def cyclonedx_document(closure: Closure, image_name: str, manifest_digest: str, epoch: int) -> dict[str, Any]:
    """The BOM of ``closure``, the contents of the image ``image_name`` whose manifest is
    ``manifest_digest`` (``sha256:...``)."""
    algo, _, hex_digest = manifest_digest.partition(":")
    image: dict[str, Any] = {"type": "container", "bom-ref": IMAGE_BOM_REF, "name": image_name}
    if algo == "sha256":
        image["hashes"] = [{"alg": "SHA-256", "content": hex_digest}]
    dependencies = [{"ref": IMAGE_BOM_REF, "dependsOn": list(closure.roots)}]
    dependencies += [{"ref": p, "dependsOn": sorted(closure.refs(p))} for p in closure.paths]
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(epoch),
            "tools": {"components": [{"type": "application", "name": "layerforge", "version": __version__}]},
            "component": image,
        },
        "components": [_component(closure, p) for p in closure.paths],
        "dependencies": dependencies,
    }
    document["serialNumber"] = deterministic_serial(document)
    return document
