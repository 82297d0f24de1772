"""An independent reader of cosign-format image signatures and attestations: the tests' oracle.

Written only from the published formats, never from layerforge's signing code:

- cosign's ``specs/SIGNATURE_SPEC.md`` (tag-based discovery ``sha256-<hex>.sig``; one OCI image
  manifest whose layers are Simple Signing payloads of media type
  ``application/vnd.dev.cosign.simplesigning.v1+json``, each signed by the base64 ECDSA-P256
  signature in the layer annotation ``dev.cosignproject.cosign/signature``; payload
  ``critical.type`` ``cosign container image signature``, ``critical.image`` naming the signed
  manifest's digest under ``docker-manifest-digest``);
- cosign's ``specs/ATTESTATION_SPEC.md`` (one OCI image manifest whose layers are DSSE envelopes
  of media type ``application/vnd.dsse.envelope.v1+json`` holding in-toto Statements; the
  subject must name the image);
- DSSE ``protocol.md``/``envelope.md`` (PAE; ``keyid`` optional and never a security decision;
  standard or URL-safe base64);
- in-toto attestation ``spec/v1/statement.md`` (``_type``, ``subject[].digest``,
  ``predicateType``, ``predicate``).

Signatures are checked with ``cryptography`` (Simple Signing) and securesystemslib's DSSE
``Envelope`` (attestations). Everything is read over plain HTTP with urllib (loopback test
registries; pass ``headers``/``opener`` for a registry that wants a token or TLS) or from an OCI
image layout directory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib import exceptions as sslib_exceptions
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

# Manifests and configs.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_ACCEPT = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)

# SIGNATURE_SPEC.md.
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.cosignproject.cosign/certificate"
CHAIN_ANNOTATION = "dev.cosignproject.cosign/chain"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"

# ATTESTATION_SPEC.md, DSSE, in-toto.
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
#: Not in ATTESTATION_SPEC.md: the annotation cosign puts on an attestation layer. When present
#: it must agree with the statement's own ``predicateType``.
PREDICATE_TYPE_ANNOTATION = "predicateType"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
#: cosign itself still writes v0.1 statements (see tests/data/cosign/oci-attestation.sigstore.json).
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES = (STATEMENT_V1, STATEMENT_V01)

# OCI image layouts.
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
ATTESTATION_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.att.v1+json"


class OracleError(Exception):
    """The signatures or attestations of an image do not hold."""


class NotFoundError(OracleError):
    """No ``.sig``/``.att`` manifest for the digest (registry 404, or nothing in the layout)."""


class FormatError(OracleError):
    """A manifest, payload, envelope or statement is not what the specifications say."""


class DigestMismatchError(OracleError):
    """A blob's bytes do not hash to (or are not as long as) its descriptor says."""


class SignatureError(OracleError):
    """No signature verifies with the given key."""


class ClaimsError(OracleError):
    """A signature by the key verifies, but what it signs does not describe the image: wrong
    digest, type, reference, subject, payload type or predicate type."""


# --- naming -------------------------------------------------------------------------------------


def _split_digest(digest: str) -> tuple[str, str]:
    algorithm, sep, hexpart = digest.partition(":")
    if not sep or algorithm != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise FormatError(f"not a sha256 digest: {digest!r}")
    return algorithm, hexpart


def signature_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.sig`` (SIGNATURE_SPEC.md, tag-based discovery)."""
    algorithm, hexpart = _split_digest(digest)
    return f"{algorithm}-{hexpart}.sig"


def attestation_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>.att``."""
    algorithm, hexpart = _split_digest(digest)
    return f"{algorithm}-{hexpart}.att"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_blob(data: bytes, descriptor: Mapping[str, Any], what: str) -> bytes:
    expected = descriptor.get("digest")
    actual = sha256_digest(data)
    if actual != expected:
        raise DigestMismatchError(f"{what}: content hashes to {actual}, its descriptor says {expected}")
    size = descriptor.get("size")
    if size is not None and size != len(data):
        raise DigestMismatchError(f"{what}: {len(data)} bytes, its descriptor says {size}")
    return data


# --- reading a registry -------------------------------------------------------------------------


def _get(
    url: str,
    accept: Sequence[str] | None,
    headers: Mapping[str, str] | None,
    opener: urllib.request.OpenerDirector | None,
    timeout: float,
) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    if accept:
        request.add_header("Accept", ", ".join(accept))
    try:
        if opener is not None:
            with opener.open(request, timeout=timeout) as answer:
                return bytes(answer.read())
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise NotFoundError(f"GET {url}: 404") from e
        raise OracleError(f"GET {url}: HTTP {e.code} {e.reason}") from e


def fetch_manifest(
    base_url: str,
    repo: str,
    reference: str,
    accept: Sequence[str] = MANIFEST_ACCEPT,
    *,
    headers: Mapping[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
    timeout: float = 30.0,
) -> bytes:
    """The bytes of manifest ``reference`` (a tag or a digest) of ``repo``; ``base_url`` is e.g.
    ``http://127.0.0.1:5000``. A digest reference is checked against the bytes. 404 raises
    :class:`NotFoundError`."""
    url = f"{base_url.rstrip('/')}/v2/{repo}/manifests/{urllib.parse.quote(reference, safe=':')}"
    body = _get(url, accept, headers, opener, timeout)
    if reference.startswith("sha256:") and sha256_digest(body) != reference:
        raise DigestMismatchError(f"manifest {repo}@{reference}: content hashes to {sha256_digest(body)}")
    return body


def fetch_blob(
    base_url: str,
    repo: str,
    digest: str,
    *,
    headers: Mapping[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
    timeout: float = 30.0,
) -> bytes:
    """The bytes of blob ``digest`` of ``repo``, checked against ``digest``
    (:class:`DigestMismatchError`)."""
    _split_digest(digest)
    body = _get(f"{base_url.rstrip('/')}/v2/{repo}/blobs/{digest}", None, headers, opener, timeout)
    return _check_blob(body, {"digest": digest}, f"blob {repo}@{digest}")


# --- sources: a registry repository or an OCI layout ----------------------------------------


class _Source(Protocol):
    def manifest(self, digest: str, kind: str) -> dict[str, Any]: ...

    def blob(self, descriptor: Mapping[str, Any], what: str) -> bytes: ...


class _RegistrySource:
    def __init__(
        self,
        base_url: str,
        repo: str,
        headers: Mapping[str, str] | None,
        opener: urllib.request.OpenerDirector | None,
    ) -> None:
        self.base_url, self.repo, self.headers, self.opener = base_url, repo, headers, opener

    def manifest(self, digest: str, kind: str) -> dict[str, Any]:
        tag = signature_tag(digest) if kind == "sig" else attestation_tag(digest)
        try:
            body = fetch_manifest(self.base_url, self.repo, tag, headers=self.headers, opener=self.opener)
        except NotFoundError as e:
            raise NotFoundError(f"no {tag} in {self.repo} at {self.base_url}: the image has no {kind} manifest") from e
        return _parse_manifest(body, f"{self.repo}:{tag}")

    def blob(self, descriptor: Mapping[str, Any], what: str) -> bytes:
        digest = descriptor.get("digest")
        if not isinstance(digest, str):
            raise FormatError(f"{what}: descriptor without a digest")
        try:
            data = fetch_blob(self.base_url, self.repo, digest, headers=self.headers, opener=self.opener)
        except DigestMismatchError as e:
            raise DigestMismatchError(f"{what}: {e}") from e
        return _check_blob(data, descriptor, what)


class _LayoutSource:
    def __init__(self, layout_dir: Path) -> None:
        self.root = Path(layout_dir)

    def _read(self, digest: str, what: str) -> bytes:
        algorithm, hexpart = _split_digest(digest)
        path = self.root / "blobs" / algorithm / hexpart
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise NotFoundError(f"{what}: {path} is missing") from e

    def blob(self, descriptor: Mapping[str, Any], what: str) -> bytes:
        digest = descriptor.get("digest")
        if not isinstance(digest, str):
            raise FormatError(f"{what}: descriptor without a digest")
        return _check_blob(self._read(digest, what), descriptor, what)

    def manifest(self, digest: str, kind: str) -> dict[str, Any]:
        """Find the ``kind`` manifest for ``digest`` in index.json: first by the ref-name
        annotation (``sha256-<hex>.<kind>``, bare or after a ``name:``), then by a manifest whose
        ``subject.digest`` is ``digest`` and whose ``artifactType`` is cosign's for ``kind`` (or,
        lacking an artifactType, whose layers all have ``kind``'s layer media type)."""
        tag = signature_tag(digest) if kind == "sig" else attestation_tag(digest)
        index_path = self.root / "index.json"
        try:
            index = json.loads(index_path.read_bytes())
        except FileNotFoundError as e:
            raise NotFoundError(f"{self.root} is not an OCI layout: no index.json") from e
        except ValueError as e:
            raise FormatError(f"{index_path}: not JSON: {e}") from e
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise FormatError(f"{index_path}: no manifests list")
        descriptors = [d for d in entries if isinstance(d, dict) and d.get("mediaType", OCI_MANIFEST) in
                       (OCI_MANIFEST, DOCKER_MANIFEST)]  # fmt: skip
        for descriptor in descriptors:
            name = (descriptor.get("annotations") or {}).get(REF_NAME_ANNOTATION)
            if isinstance(name, str) and (name == tag or name.endswith(":" + tag)):
                return _parse_manifest(self.blob(descriptor, f"{tag} manifest"), f"{self.root}:{tag}")
        artifact_type = SIGNATURE_ARTIFACT_TYPE if kind == "sig" else ATTESTATION_ARTIFACT_TYPE
        layer_type = SIMPLE_SIGNING if kind == "sig" else DSSE_ENVELOPE
        for descriptor in descriptors:
            what = f"manifest {descriptor.get('digest')} of {self.root}"
            manifest = _parse_manifest(self.blob(descriptor, what), what)
            subject = manifest.get("subject")
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            declared = manifest.get("artifactType", descriptor.get("artifactType"))
            layers = manifest.get("layers") or []
            if declared == artifact_type or (
                declared is None and layers and all(layer.get("mediaType") == layer_type for layer in layers)
            ):
                return manifest
        raise NotFoundError(
            f"{self.root}: no {kind} manifest for {digest} (no index.json entry named {tag}, none with that"
            f" subject and artifactType {artifact_type})"
        )


def _parse_manifest(body: bytes, what: str) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
    except ValueError as e:
        raise FormatError(f"{what}: manifest is not JSON: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise FormatError(f"{what}: not a schemaVersion 2 manifest")
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise FormatError(f"{what}: media type {media_type!r} is not an image manifest")
    if not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("layers"), list):
        raise FormatError(f"{what}: manifest without a config descriptor or a layers list")
    if not all(isinstance(layer, dict) for layer in manifest["layers"]):
        raise FormatError(f"{what}: a layer descriptor is not an object")
    return manifest


def _check_config(source: _Source, manifest: Mapping[str, Any], what: str) -> None:
    """The config is whatever JSON object the producer wrote (the specs leave it open) but it
    must exist, match its descriptor and carry an image config media type."""
    config = manifest["config"]
    if config.get("mediaType") not in (OCI_CONFIG, DOCKER_CONFIG):
        raise FormatError(f"{what}: config media type {config.get('mediaType')!r} is not an image config")
    try:
        parsed = json.loads(source.blob(config, f"{what} config"))
    except ValueError as e:
        raise FormatError(f"{what}: config is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise FormatError(f"{what}: config is not a JSON object")


# --- keys ----------------------------------------------------------------------------------------


def _p256_key(public_key_pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as e:
        raise OracleError(f"not a PEM public key: {e}") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise OracleError(f"not an ECDSA P-256 public key: {type(key).__name__}")
    return key


def _b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64 (DSSE accepts both; cosign writes standard)."""
    if not isinstance(text, str):
        raise FormatError(f"{what}: not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        try:
            return base64.b64decode(text, altchars=b"-_", validate=True)
        except binascii.Error as e:
            raise FormatError(f"{what}: not base64: {e}") from e


# --- Simple Signing ------------------------------------------------------------------------------


def read_simple_signing(payload: bytes, digest: str, *, docker_reference: str | None = None) -> dict[str, Any]:
    """The claims of a Simple Signing payload (SIGNATURE_SPEC.md, Payloads), checked: a JSON
    object whose ``critical.type`` is ``cosign container image signature``, whose
    ``critical.image["docker-manifest-digest"]`` is ``digest`` and, when ``docker_reference`` is
    given, whose ``critical.identity["docker-reference"]`` is it (cosign ignores that field; the
    tests may not). ``optional`` may be absent, null or an object."""
    try:
        claims = json.loads(payload)
    except ValueError as e:
        raise FormatError(f"simple signing payload is not JSON: {e}") from e
    if not isinstance(claims, dict):
        raise FormatError("simple signing payload is not a JSON object")
    critical = claims.get("critical")
    if not isinstance(critical, dict):
        raise FormatError("simple signing payload without a 'critical' object")
    if critical.get("type") != COSIGN_SIGNATURE_TYPE:
        raise ClaimsError(f"critical.type is {critical.get('type')!r}, not {COSIGN_SIGNATURE_TYPE!r}")
    image = critical.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("docker-manifest-digest"), str):
        raise FormatError("simple signing payload without critical.image['docker-manifest-digest']")
    if image["docker-manifest-digest"] != digest:
        raise ClaimsError(f"the payload signs {image['docker-manifest-digest']}, not {digest}")
    identity = critical.get("identity")
    if not isinstance(identity, dict):
        raise FormatError("simple signing payload without a critical.identity object")
    if docker_reference is not None and identity.get("docker-reference") != docker_reference:
        raise ClaimsError(
            f"critical.identity['docker-reference'] is {identity.get('docker-reference')!r}, not {docker_reference!r}"
        )
    optional = claims.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise FormatError("simple signing payload: 'optional' is neither null nor an object")
    return claims


def _verify_signature_manifest(
    source: _Source, digest: str, public_key_pem: bytes, docker_reference: str | None
) -> list[dict[str, Any]]:
    key = _p256_key(public_key_pem)
    manifest = source.manifest(digest, "sig")
    what = f"{signature_tag(digest)} manifest"
    _check_config(source, manifest, what)
    verified: list[dict[str, Any]] = []
    skipped: list[str] = []
    for i, layer in enumerate(manifest["layers"]):
        if layer.get("mediaType") != SIMPLE_SIGNING:
            skipped.append(f"layer {i}: media type {layer.get('mediaType')!r}")
            continue
        annotation = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if annotation is None:
            skipped.append(f"layer {i}: no {SIGNATURE_ANNOTATION} annotation")
            continue
        signature = _b64decode(annotation, f"{what} layer {i} signature")
        payload = source.blob(layer, f"{what} layer {i} payload")
        try:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            skipped.append(f"layer {i}: signature does not verify with this key")
            continue
        # Signed by this key: whatever it claims must describe the image.
        try:
            verified.append(read_simple_signing(payload, digest, docker_reference=docker_reference))
        except OracleError as e:
            raise type(e)(f"{what} layer {i} (signed by this key): {e}") from e
    if not verified:
        raise SignatureError(f"{what}: no signature verifies with this key ({'; '.join(skipped) or 'no layers'})")
    return verified


def verify_signatures(
    base_url: str,
    repo: str,
    digest: str,
    public_key_pem: bytes,
    *,
    docker_reference: str | None = None,
    headers: Mapping[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> list[dict[str, Any]]:
    """The Simple Signing payloads of ``repo:sha256-<hex>.sig`` that ``public_key_pem`` (ECDSA
    P-256) signed, each checked to name ``digest`` (and ``docker_reference`` when given).

    Layers signed by another key are not counted. Raises :class:`NotFoundError` (no tag),
    :class:`SignatureError` (no layer verifies with the key), :class:`DigestMismatchError` (a
    blob differs from its descriptor), :class:`ClaimsError` (a payload the key signed names
    another image), :class:`FormatError`."""
    source = _RegistrySource(base_url, repo, headers, opener)
    return _verify_signature_manifest(source, digest, public_key_pem, docker_reference)


def verify_layout_signatures(
    layout_dir: Path, digest: str, public_key_pem: bytes, *, docker_reference: str | None = None
) -> list[dict[str, Any]]:
    """:func:`verify_signatures` for an OCI image layout directory (see
    :meth:`_LayoutSource.manifest` for how the signature manifest is found)."""
    return _verify_signature_manifest(_LayoutSource(layout_dir), digest, public_key_pem, docker_reference)


# --- DSSE and in-toto ----------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (protocol.md), for the tests' own signing."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def verify_dsse(envelope: Mapping[str, Any], public_key_pem: bytes) -> tuple[str, bytes]:
    """(payloadType, payload) of a DSSE JSON envelope one of whose signatures verifies with
    ``public_key_pem``, by securesystemslib's :class:`~securesystemslib.dsse.Envelope`.

    securesystemslib only tries a key on signatures carrying that key's keyid, and rejects an
    envelope with two signatures of the same keyid (e.g. two empty ones). DSSE makes keyid an
    optional, unauthenticated hint (unset == empty) that must never decide anything, and cosign
    leaves it unset. So each signature is verified on its own, in a one-signature envelope whose
    keyid is rewritten to the key's: keyid plays no part, the PAE and signature are unchanged.
    The payload returned is the one that was verified (no re-parse)."""
    key = _p256_key(public_key_pem)
    sslib_key = SSlibKey.from_crypto(key)  # keytype ecdsa, scheme ecdsa-sha2-nistp256 (DER signatures)
    for field_name in ("payload", "payloadType", "signatures"):
        if field_name not in envelope:
            raise FormatError(f"DSSE envelope without {field_name!r}")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not isinstance(envelope["payloadType"], str):
        raise FormatError("DSSE envelope: 'signatures' is not a list or 'payloadType' not a string")
    for i, signature in enumerate(signatures):
        if not isinstance(signature, dict) or not isinstance(signature.get("sig"), str):
            raise FormatError(f"DSSE envelope: signature {i} has no 'sig' string")
        single = {
            "payload": envelope["payload"],
            "payloadType": envelope["payloadType"],
            "signatures": [{"keyid": sslib_key.keyid, "sig": signature["sig"]}],
        }
        try:
            parsed = Envelope.from_dict(single)
        except (KeyError, ValueError, binascii.Error, sslib_exceptions.FormatError) as e:
            raise FormatError(f"DSSE envelope does not decode: {e}") from e
        try:
            parsed.verify(keys=[sslib_key], threshold=1)
        except sslib_exceptions.UnverifiedSignatureError:
            continue
        return parsed.payload_type, parsed.payload
    raise SignatureError(f"none of the DSSE envelope's {len(signatures)} signature(s) verifies with this key")


def read_statement(
    payload_type: str, payload: bytes, digest: str, *, statement_types: Sequence[str] = STATEMENT_TYPES
) -> dict[str, Any]:
    """The in-toto Statement in a verified DSSE payload, checked: payloadType
    ``application/vnd.in-toto+json``; ``_type`` one of ``statement_types`` (v1 and, as cosign
    writes, v0.1); a ``subject`` list of descriptors with ``digest`` objects, one of which has
    ``sha256`` equal to ``digest``'s hex; a string ``predicateType``; ``predicate`` absent or
    an object."""
    _, hexpart = _split_digest(digest)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise ClaimsError(f"DSSE payloadType is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}")
    try:
        statement = json.loads(payload)
    except ValueError as e:
        raise FormatError(f"in-toto statement is not JSON: {e}") from e
    if not isinstance(statement, dict):
        raise FormatError("in-toto statement is not a JSON object")
    if statement.get("_type") not in statement_types:
        raise ClaimsError(f"statement _type is {statement.get('_type')!r}, not one of {list(statement_types)}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise FormatError("statement without a subject list")
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise FormatError(f"statement subject without a digest object: {subject!r}")
    if not any(subject["digest"].get("sha256") == hexpart for subject in subjects):
        named = [s["digest"].get("sha256") for s in subjects]
        raise ClaimsError(f"no statement subject has sha256 {hexpart} (subjects' sha256: {named})")
    if not isinstance(statement.get("predicateType"), str):
        raise FormatError("statement without a predicateType string")
    predicate = statement.get("predicate")
    if predicate is not None and not isinstance(predicate, dict):
        raise FormatError("statement predicate is not an object")
    return statement


def _verify_attestation_manifest(
    source: _Source,
    digest: str,
    public_key_pem: bytes,
    predicate_type: str | None,
    statement_types: Sequence[str],
) -> list[dict[str, Any]]:
    _p256_key(public_key_pem)
    manifest = source.manifest(digest, "att")
    what = f"{attestation_tag(digest)} manifest"
    _check_config(source, manifest, what)
    verified: list[dict[str, Any]] = []
    skipped: list[str] = []
    for i, layer in enumerate(manifest["layers"]):
        if layer.get("mediaType") != DSSE_ENVELOPE:
            skipped.append(f"layer {i}: media type {layer.get('mediaType')!r}")
            continue
        body = source.blob(layer, f"{what} layer {i} envelope")
        try:
            envelope = json.loads(body)
        except ValueError as e:
            raise FormatError(f"{what} layer {i}: envelope is not JSON: {e}") from e
        if not isinstance(envelope, dict):
            raise FormatError(f"{what} layer {i}: envelope is not a JSON object")
        try:
            payload_type, payload = verify_dsse(envelope, public_key_pem)
        except SignatureError as e:
            skipped.append(f"layer {i}: {e}")
            continue
        try:
            statement = read_statement(payload_type, payload, digest, statement_types=statement_types)
            annotated = (layer.get("annotations") or {}).get(PREDICATE_TYPE_ANNOTATION)
            if annotated is not None and annotated != statement["predicateType"]:
                raise ClaimsError(
                    f"layer annotation {PREDICATE_TYPE_ANNOTATION} is {annotated!r}, the statement's"
                    f" predicateType {statement['predicateType']!r}"
                )
        except OracleError as e:
            raise type(e)(f"{what} layer {i} (signed by this key): {e}") from e
        verified.append(statement)
    if not verified:
        raise SignatureError(f"{what}: no attestation verifies with this key ({'; '.join(skipped) or 'no layers'})")
    if predicate_type is not None:
        matching = [s for s in verified if s["predicateType"] == predicate_type]
        if not matching:
            found = sorted({s["predicateType"] for s in verified})
            raise ClaimsError(f"{what}: no verified attestation of predicate type {predicate_type} (found {found})")
        return matching
    return verified


def verify_attestations(
    base_url: str,
    repo: str,
    digest: str,
    public_key_pem: bytes,
    *,
    predicate_type: str | None = None,
    statement_types: Sequence[str] = STATEMENT_TYPES,
    headers: Mapping[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> list[dict[str, Any]]:
    """The in-toto Statements in ``repo:sha256-<hex>.att`` whose DSSE envelopes
    ``public_key_pem`` signed, each checked (:func:`read_statement`) to have ``digest`` as a
    subject; only those of ``predicate_type`` when given (:class:`ClaimsError` if none).
    Envelopes signed by another key are not counted; errors as :func:`verify_signatures`."""
    source = _RegistrySource(base_url, repo, headers, opener)
    return _verify_attestation_manifest(source, digest, public_key_pem, predicate_type, statement_types)


def verify_layout_attestations(
    layout_dir: Path,
    digest: str,
    public_key_pem: bytes,
    *,
    predicate_type: str | None = None,
    statement_types: Sequence[str] = STATEMENT_TYPES,
) -> list[dict[str, Any]]:
    """:func:`verify_attestations` for an OCI image layout directory."""
    source = _LayoutSource(layout_dir)
    return _verify_attestation_manifest(source, digest, public_key_pem, predicate_type, statement_types)
