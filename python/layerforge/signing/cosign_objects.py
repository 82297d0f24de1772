"""The objects cosign stores next to an image (SIGNATURE_SPEC, ATTESTATION_SPEC): one OCI
image manifest per signed image and kind, found by the tag ``sha256-<hex>.sig`` (signatures)
or ``sha256-<hex>.att`` (attestations), whose layers are the signed payloads, one per
signature. The manifest also names the image as its ``subject`` (with an ``artifactType``),
so a registry with the OCI 1.1 referrers API lists it with the image, and a layout keeps it
as a referrer. A new signature is added as a layer to the ones already there."""

from __future__ import annotations

from dataclasses import dataclass

from layerforge.errors import LayerforgeError
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex, sha256_digest
from layerforge.model.manifest import Manifest
from layerforge.signing import dsse, simple_signing

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_TYPE_ANNOTATION = "predicateType"
#: At most this many signatures (layers) in one object: more is not a real image's.
MAX_LAYERS = 256
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Kind:
    """Signatures or attestations: their tag suffix, artifact type and layer media type."""

    suffix: str
    artifact_type: str
    layer_media_type: str

    def tag(self, digest: str) -> str:
        return f"sha256-{digest_hex(digest)}.{self.suffix}"


SIGNATURES = Kind("sig", media_types.COSIGN_SIGNATURES, simple_signing.MEDIA_TYPE)
ATTESTATIONS = Kind("att", media_types.COSIGN_ATTESTATIONS, dsse.MEDIA_TYPE)
KINDS = (SIGNATURES, ATTESTATIONS)


def kind_of(artifact_type: str | None) -> Kind | None:
    return next((k for k in KINDS if k.artifact_type == artifact_type), None)


@dataclass(frozen=True)
class CosignObject:
    """A manifest to store and the blobs it needs (its config and every layer's bytes)."""

    manifest: bytes
    digest: str
    blobs: dict[str, bytes]
    layers_added: int


def layer(kind: Kind, payload: bytes, annotations: dict[str, str]) -> Descriptor:
    return Descriptor(
        media_type=kind.layer_media_type,
        digest=sha256_digest(payload),
        size=len(payload),
        annotations=dict(annotations),
    )


def config(layers: tuple[Descriptor, ...]) -> bytes:
    """The config cosign writes: an empty image whose diff_ids are the layers'."""
    return canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": _ZERO_TIME,
            "history": [{"created": _ZERO_TIME} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layers]},
        }
    )


def with_layers(
    kind: Kind, subject: Descriptor, existing: Manifest | None, new: list[tuple[Descriptor, bytes]]
) -> CosignObject:
    """The object holding ``existing``'s layers and each of ``new`` it lacks (the same
    payload with the same annotations is the same signature)."""
    layers = list(existing.layers if existing is not None else ())
    blobs: dict[str, bytes] = {}
    added = 0
    for desc, payload in new:
        if any(d.digest == desc.digest and d.annotations == desc.annotations for d in layers):
            continue
        layers.append(desc)
        blobs[desc.digest] = payload
        added += 1
    if len(layers) > MAX_LAYERS:
        raise LayerforgeError(f"more than {MAX_LAYERS} {kind.suffix} layers for {subject.digest}")
    cfg = config(tuple(layers))
    cfg_desc = Descriptor(media_type=media_types.IMAGE_CONFIG, digest=sha256_digest(cfg), size=len(cfg))
    blobs[cfg_desc.digest] = cfg
    manifest = Manifest(
        config=cfg_desc,
        layers=tuple(layers),
        subject=Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size),
        artifact_type=kind.artifact_type,
    )
    data = canonical_json(manifest.to_json())
    return CosignObject(manifest=data, digest=sha256_digest(data), blobs=blobs, layers_added=added)
