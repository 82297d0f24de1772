"""Signing and attesting images into a :class:`~layerforge.signing.store.CosignStore`.

A signature is cosign's: the simple-signing payload naming the manifest digest and the
repository, signed (ECDSA P-256, SHA-256, deterministic) and carried base64-encoded in the
layer's ``dev.cosignproject.cosign/signature`` annotation. An attestation is a DSSE envelope
of an in-toto statement, signed with the same key. Signing again with the same key adds
nothing (the signature is the same bytes); another key's signature is added beside it."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from layerforge._native import SigningKey
from layerforge.model.descriptor import Descriptor
from layerforge.signing import cosign_objects, dsse, simple_signing
from layerforge.signing.cosign_objects import (
    ATTESTATIONS,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURES,
    Kind,
)
from layerforge.signing.statements import Statement
from layerforge.signing.store import CosignStore


@dataclass(frozen=True)
class Signed:
    """One image's signature or attestations: the object now stored and what was added."""

    subject: str
    kind: str  # the kind's tag suffix: "sig" or "att"
    digest: str
    added: int
    tag: str


def add_layers(store: CosignStore, kind: Kind, subject: Descriptor, new: list[tuple[Descriptor, bytes]]) -> Signed:
    """Add ``new`` (layers and their payloads) to the object of ``kind`` the store holds for
    ``subject``, saving it only when one of them was not there yet."""
    obj = cosign_objects.with_layers(kind, subject, store.find(subject.digest, kind), new)
    if obj.layers_added:
        store.save(subject, kind, obj)
    return Signed(subject.digest, kind.suffix, obj.digest, obj.layers_added, kind.tag(subject.digest))


def sign(store: CosignStore, subjects: Sequence[Descriptor], docker_reference: str, key: SigningKey) -> list[Signed]:
    """Sign each of ``subjects`` (manifests and indexes) as ``docker_reference``."""
    out = []
    for subject in subjects:
        payload = simple_signing.payload(docker_reference, subject.digest)
        signature = base64.b64encode(key.sign(payload)).decode()
        desc = cosign_objects.layer(SIGNATURES, payload, {SIGNATURE_ANNOTATION: signature})
        out.append(add_layers(store, SIGNATURES, subject, [(desc, payload)]))
    return out


def attest(store: CosignStore, subject: Descriptor, statements: Sequence[Statement], key: SigningKey) -> Signed:
    """Attest ``subject`` with each statement, in one DSSE envelope each."""
    new = []
    for s in statements:
        envelope = dsse.envelope(s.body, key)
        annotations = {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: s.predicate_type}
        new.append((cosign_objects.layer(ATTESTATIONS, envelope, annotations), envelope))
    return add_layers(store, ATTESTATIONS, subject, new)
