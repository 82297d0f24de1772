"""Tests of the cosign oracle itself (tests/cosign_oracle.py), with no layerforge signing code:
signatures and attestations are built here by hand, with ``cryptography``, as cosign's
specifications describe them, pushed to a real loopback registry with plain HTTP requests or
written as an OCI layout; then the oracle must accept exactly the right ones. Fixtures taken
from cosign's and DSSE's own repositories (tests/data/cosign/README.md) pin the reader to what
real cosign writes."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.cosign_oracle import (
    ATTESTATION_ARTIFACT_TYPE,
    COSIGN_SIGNATURE_TYPE,
    DSSE_ENVELOPE,
    IN_TOTO_PAYLOAD_TYPE,
    OCI_CONFIG,
    OCI_MANIFEST,
    PREDICATE_TYPE_ANNOTATION,
    REF_NAME_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT_TYPE,
    SIMPLE_SIGNING,
    STATEMENT_V01,
    STATEMENT_V1,
    ClaimsError,
    DigestMismatchError,
    NotFoundError,
    OracleError,
    SignatureError,
    attestation_tag,
    fetch_blob,
    fetch_manifest,
    pae,
    read_simple_signing,
    read_statement,
    sha256_digest,
    signature_tag,
    verify_attestations,
    verify_dsse,
    verify_layout_attestations,
    verify_layout_signatures,
    verify_signatures,
)
from tests.registry_support import FaultProxy, Registry, Rule

DATA = Path(__file__).parent / "data" / "cosign"
REPO = "oracle/app"
PREDICATE = "https://example.com/predicate/v1"


# --- hand-made cosign objects --------------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    """Base64 of an ASN.1 DER ECDSA P-256 SHA-256 signature over ``data``."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def simple_signing(digest: str, reference: str = f"127.0.0.1/{REPO}", kind: str = COSIGN_SIGNATURE_TYPE) -> bytes:
    """A Simple Signing payload as SIGNATURE_SPEC.md describes it."""
    critical = {"identity": {"docker-reference": reference}, "image": {"docker-manifest-digest": digest}, "type": kind}
    return canonical({"critical": critical, "optional": None})


def statement(digest: str, predicate_type: str = PREDICATE, kind: str = STATEMENT_V1) -> bytes:
    """An in-toto Statement (spec/v1/statement.md) about the image ``digest``."""
    subject = [{"name": f"127.0.0.1/{REPO}", "digest": {"sha256": digest.split(":", 1)[1]}}]
    return canonical({"_type": kind, "subject": subject, "predicateType": predicate_type, "predicate": {"x": 1}})


def envelope(key: ec.EllipticCurvePrivateKey, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE,
             keyid: str | None = "") -> bytes:  # fmt: skip
    """A DSSE envelope (envelope.md) whose signature covers PAE(payloadType, payload);
    ``keyid=None`` leaves the field out, as cosign does."""
    signature: dict[str, str] = {"sig": sign(key, pae(payload_type, payload))}
    if keyid is not None:
        signature["keyid"] = keyid
    body = {"payload": base64.b64encode(payload).decode(), "payloadType": payload_type, "signatures": [signature]}
    return canonical(body)


@dataclass
class Blob:
    data: bytes
    media_type: str
    annotations: dict[str, str] | None = None

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "size": len(self.data), "digest": sha256_digest(self.data)}
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def signature_layer(key: ec.EllipticCurvePrivateKey, payload: bytes, signed: bytes | None = None) -> Blob:
    """A ``.sig`` manifest layer: the payload blob, its signature (over ``signed``, default the
    payload) in the ``dev.cosignproject.cosign/signature`` annotation."""
    return Blob(payload, SIMPLE_SIGNING, {SIGNATURE_ANNOTATION: sign(key, payload if signed is None else signed)})


def attestation_layer(body: bytes, predicate_type: str | None = PREDICATE) -> Blob:
    annotations = {PREDICATE_TYPE_ANNOTATION: predicate_type} if predicate_type is not None else None
    return Blob(body, DSSE_ENVELOPE, annotations)


def config_for(layers: list[Blob]) -> Blob:
    """The config of a signature/attestation manifest, shaped like the one cosign writes (an OCI
    image config listing the layers as its diff_ids); the specs leave its content open."""
    config = {
        "architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "", "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer.data) for layer in layers]},
        "config": {},
    }  # fmt: skip
    return Blob(canonical(config), OCI_CONFIG)


def manifest_for(layers: list[Blob], extra: dict[str, Any] | None = None) -> tuple[bytes, list[Blob]]:
    """An OCI image manifest (schemaVersion 2) of ``layers``, and every blob it references."""
    config = config_for(layers)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers], **(extra or {})}  # fmt: skip
    return canonical(body), [config, *layers]


# --- a registry, by hand -----------------------------------------------------------------------


def push_blob(base: str, repo: str, data: bytes) -> str:
    """Monolithic upload: POST an upload session, PUT the bytes with ?digest=."""
    start = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(start, timeout=30) as answer:
        assert answer.status == 202
        location = answer.headers["Location"]
    url = location if location.startswith("http") else base + location
    digest = sha256_digest(data)
    url += ("&" if "?" in url else "?") + f"digest={digest}"
    put = urllib.request.Request(url, method="PUT", data=data, headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put, timeout=30) as answer:
        assert answer.status == 201
    return digest


def push_manifest(base: str, repo: str, reference: str, body: bytes, blobs: list[Blob]) -> str:
    for blob in blobs:
        push_blob(base, repo, blob.data)
    put = urllib.request.Request(
        f"{base}/v2/{repo}/manifests/{reference}", method="PUT", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    with urllib.request.urlopen(put, timeout=30) as answer:
        assert answer.status == 201
    return sha256_digest(body)


def push_image(base: str, repo: str = REPO) -> str:
    """A small image to sign, tagged latest; its manifest digest."""
    layer = Blob(b"not really a tar, the oracle never reads it", "application/vnd.oci.image.layer.v1.tar")
    config = Blob(canonical({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
                  OCI_CONFIG)  # fmt: skip
    body = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                      "layers": [layer.descriptor()]})  # fmt: skip
    return push_manifest(base, repo, "latest", body, [config, layer])


@pytest.fixture
def base(registry: Registry) -> str:
    return f"http://{registry.host}"


def push_signatures(base: str, digest: str, layers: list[Blob], repo: str = REPO) -> str:
    body, blobs = manifest_for(layers)
    return push_manifest(base, repo, signature_tag(digest), body, blobs)


def push_attestations(base: str, digest: str, layers: list[Blob], repo: str = REPO) -> str:
    body, blobs = manifest_for(layers)
    return push_manifest(base, repo, attestation_tag(digest), body, blobs)


# --- naming and fetching -------------------------------------------------------------------------


def test_tags_follow_the_spec_mapping() -> None:
    digest = "sha256:97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36"  # SIGNATURE_SPEC.md's example
    assert signature_tag(digest) == "sha256-97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36.sig"
    assert attestation_tag(digest) == "sha256-97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36.att"
    with pytest.raises(OracleError, match="not a sha256 digest"):
        signature_tag("sha256:abc")


def test_fetches_check_digests(base: str) -> None:
    digest = push_image(base)
    body = fetch_manifest(base, REPO, "latest")
    assert sha256_digest(body) == digest
    assert fetch_manifest(base, REPO, digest) == body
    config = json.loads(body)["config"]["digest"]
    assert sha256_digest(fetch_blob(base, REPO, config)) == config
    with pytest.raises(NotFoundError):
        fetch_manifest(base, REPO, "nope")
    with pytest.raises(NotFoundError):
        fetch_blob(base, REPO, sha256_digest(b"never pushed"))


# --- signatures --------------------------------------------------------------------------------


def test_signature_verifies_with_the_right_key_only(base: str) -> None:
    digest = push_image(base)
    key, other = new_key(), new_key()
    payload = simple_signing(digest)
    push_signatures(base, digest, [signature_layer(key, payload)])

    verified = verify_signatures(base, REPO, digest, public_pem(key), docker_reference=f"127.0.0.1/{REPO}")
    assert verified == [json.loads(payload)]
    assert verified[0]["critical"]["type"] == COSIGN_SIGNATURE_TYPE
    with pytest.raises(ClaimsError, match="docker-reference"):
        verify_signatures(base, REPO, digest, public_pem(key), docker_reference="example.com/elsewhere")
    with pytest.raises(SignatureError, match="does not verify with this key"):
        verify_signatures(base, REPO, digest, public_pem(other))


def test_only_the_keys_own_layers_count(base: str) -> None:
    digest = push_image(base)
    key, other = new_key(), new_key()
    mine = simple_signing(digest, reference="mine")
    theirs = simple_signing(digest, reference="theirs")
    push_signatures(base, digest, [signature_layer(other, theirs), signature_layer(key, mine)])
    assert verify_signatures(base, REPO, digest, public_pem(key)) == [json.loads(mine)]
    assert verify_signatures(base, REPO, digest, public_pem(other)) == [json.loads(theirs)]
    # A signature by another key over *my* payload does not count for me either.
    push_signatures(base, digest, [signature_layer(other, mine)])
    with pytest.raises(SignatureError):
        verify_signatures(base, REPO, digest, public_pem(key))


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (lambda d: simple_signing("sha256:" + "0" * 64), "signs sha256:0000"),
        (lambda d: simple_signing(d, kind="atomic container signature"), "critical.type"),
    ],
    ids=["other-digest", "other-type"],
)
def test_signed_payload_that_does_not_describe_the_image_is_refused(
    base: str, payload: Callable[[str], bytes], error: str
) -> None:
    digest = push_image(base)
    key = new_key()
    push_signatures(base, digest, [signature_layer(key, payload(digest))])
    with pytest.raises(ClaimsError, match=error):
        verify_signatures(base, REPO, digest, public_pem(key))


def test_tampered_payload_is_refused(base: str, registry: Registry) -> None:
    digest = push_image(base)
    key = new_key()
    payload = simple_signing(digest)
    tampered = payload.replace(b'"optional":null', b'"optional":{"x":1}')
    # The layer names a payload other than the one signed: the signature fails.
    push_signatures(base, digest, [signature_layer(key, tampered, signed=payload)])
    with pytest.raises(SignatureError):
        verify_signatures(base, REPO, digest, public_pem(key))
    # The registry answers other bytes than the layer's digest names: a digest mismatch.
    push_signatures(base, digest, [signature_layer(key, payload)])
    proxy = FaultProxy(registry.host).start()
    try:
        proxy.rules.append(Rule("respond", method="GET", path=f"/blobs/{sha256_digest(payload)}", body=tampered))
        with pytest.raises(DigestMismatchError, match="hashes to"):
            verify_signatures(f"http://{proxy.host}", REPO, digest, public_pem(key))
        assert proxy.hostile
    finally:
        proxy.stop()


def test_missing_signature_tag_is_refused(base: str) -> None:
    digest = push_image(base)
    with pytest.raises(NotFoundError, match=r"no sha256-[0-9a-f]{64}\.sig"):
        verify_signatures(base, REPO, digest, public_pem(new_key()))


def test_cosigns_own_payload_bytes_are_read(base: str) -> None:
    """The exact payload cosign writes (tests/data/cosign/simple-signing-payload.json)."""
    payload = (DATA / "simple-signing-payload.json").read_bytes()
    digest = "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec"
    claims = read_simple_signing(payload, digest, docker_reference="index.docker.io/namespace/image")
    assert claims["optional"] is None
    with pytest.raises(ClaimsError):
        read_simple_signing(payload, "sha256:" + "1" * 64)
    # Signed by hand and stored per the spec under that digest's tag, it verifies.
    key = new_key()
    push_signatures(base, digest, [signature_layer(key, payload)])
    assert verify_signatures(base, REPO, digest, public_pem(key)) == [claims]


# --- attestations ------------------------------------------------------------------------------


@pytest.mark.parametrize("keyid", ["", None, "some-hint"], ids=["empty-keyid", "no-keyid", "foreign-keyid"])
def test_attestation_verifies_with_the_right_key_only(base: str, keyid: str | None) -> None:
    digest = push_image(base)
    key, other = new_key(), new_key()
    push_attestations(base, digest, [attestation_layer(envelope(key, statement(digest), keyid=keyid))])
    statements = verify_attestations(base, REPO, digest, public_pem(key))
    assert statements == [json.loads(statement(digest))]
    assert verify_attestations(base, REPO, digest, public_pem(key), predicate_type=PREDICATE) == statements
    with pytest.raises(ClaimsError, match="no verified attestation of predicate type"):
        verify_attestations(base, REPO, digest, public_pem(key), predicate_type="https://example.com/other")
    with pytest.raises(SignatureError, match="no attestation verifies with this key"):
        verify_attestations(base, REPO, digest, public_pem(other))


def test_attestations_filter_by_predicate_type_and_key(base: str) -> None:
    digest = push_image(base)
    key, other = new_key(), new_key()
    layers = [
        attestation_layer(envelope(key, statement(digest, "https://a/v1")), "https://a/v1"),
        attestation_layer(envelope(key, statement(digest, "https://b/v1", kind=STATEMENT_V01)), None),
        attestation_layer(envelope(other, statement(digest, "https://c/v1")), "https://c/v1"),
    ]
    push_attestations(base, digest, layers)
    found = verify_attestations(base, REPO, digest, public_pem(key))
    assert [s["predicateType"] for s in found] == ["https://a/v1", "https://b/v1"]
    assert len(verify_attestations(base, REPO, digest, public_pem(key), predicate_type="https://b/v1")) == 1
    with pytest.raises(ClaimsError):
        verify_attestations(base, REPO, digest, public_pem(key), predicate_type="https://c/v1")
    with pytest.raises(ClaimsError, match="_type"):
        verify_attestations(base, REPO, digest, public_pem(key), statement_types=[STATEMENT_V1])


@pytest.mark.parametrize(
    ("layer", "error"),
    [
        (lambda k, d: attestation_layer(envelope(k, statement("sha256:" + "0" * 64))), "no statement subject"),
        (lambda k, d: attestation_layer(envelope(k, statement(d), payload_type="application/json")), "payloadType"),
        (lambda k, d: attestation_layer(envelope(k, statement(d)), "https://example.com/lie"), "predicateType"),
        (lambda k, d: attestation_layer(envelope(k, statement(d, kind="https://in-toto.io/Statement/v9"))), "_type"),
    ],
    ids=["other-subject", "other-payload-type", "annotation-disagrees", "unknown-statement-type"],
)
def test_signed_attestation_that_does_not_describe_the_image_is_refused(
    base: str, layer: Callable[[ec.EllipticCurvePrivateKey, str], Blob], error: str
) -> None:
    digest = push_image(base)
    key = new_key()
    push_attestations(base, digest, [layer(key, digest)])
    with pytest.raises(ClaimsError, match=error):
        verify_attestations(base, REPO, digest, public_pem(key))


def test_tampered_attestation_is_refused(base: str) -> None:
    digest = push_image(base)
    key = new_key()
    good = json.loads(envelope(key, statement(digest)))
    forged = dict(good, payload=base64.b64encode(statement(digest, "https://example.com/forged")).decode())
    push_attestations(base, digest, [attestation_layer(canonical(forged), "https://example.com/forged")])
    with pytest.raises(SignatureError):
        verify_attestations(base, REPO, digest, public_pem(key))
    # The signature over PAE(type, body) binds the payload type too.
    retyped = dict(good, payloadType="application/vnd.other+json")
    push_attestations(base, digest, [attestation_layer(canonical(retyped))])
    with pytest.raises(SignatureError):
        verify_attestations(base, REPO, digest, public_pem(key))


def test_missing_attestation_tag_is_refused(base: str) -> None:
    digest = push_image(base)
    key = new_key()
    push_signatures(base, digest, [signature_layer(key, simple_signing(digest))])
    with pytest.raises(NotFoundError, match=r"no sha256-[0-9a-f]{64}\.att"):
        verify_attestations(base, REPO, digest, public_pem(key))


def test_two_keyless_signatures_in_one_envelope() -> None:
    """securesystemslib keys signatures by keyid; two unset keyids must not collide."""
    key, other = new_key(), new_key()
    digest = "sha256:" + "a" * 64
    body = statement(digest)
    env = {
        "payload": base64.b64encode(body).decode(),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": sign(other, pae(IN_TOTO_PAYLOAD_TYPE, body))},
                       {"sig": sign(key, pae(IN_TOTO_PAYLOAD_TYPE, body))}],
    }  # fmt: skip
    assert verify_dsse(env, public_pem(key)) == (IN_TOTO_PAYLOAD_TYPE, body)
    assert verify_dsse(env, public_pem(other)) == (IN_TOTO_PAYLOAD_TYPE, body)
    with pytest.raises(SignatureError):
        verify_dsse(env, public_pem(new_key()))


def test_cosigns_own_attestation_verifies() -> None:
    """A DSSE envelope cosign produced (tests/data/cosign/oci-attestation.sigstore.json): no
    keyids, a v0.1 Statement; verified with the public key of the certificate it came with."""
    bundle = json.loads((DATA / "oci-attestation.sigstore.json").read_bytes())
    cert = x509.load_der_x509_certificate(base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"]))
    pem = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    env = bundle["dsseEnvelope"]
    assert all("keyid" not in s for s in env["signatures"])
    payload_type, payload = verify_dsse(env, pem)
    digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    found = read_statement(payload_type, payload, digest)
    assert found["_type"] == STATEMENT_V01
    assert found["predicateType"] == "https://cosign.sigstore.dev/attestation/v1"
    with pytest.raises(ClaimsError):
        read_statement(payload_type, payload, "sha256:" + "0" * 64)
    with pytest.raises(SignatureError):
        verify_dsse(env, public_pem(new_key()))
    with pytest.raises(SignatureError):
        verify_dsse(dict(env, payload=base64.b64encode(payload + b" ").decode()), pem)


def test_dsse_spec_test_vector() -> None:
    """DSSE protocol.md's test vector: PAE, and its (raw r||s) signature re-encoded as DER."""
    vector = json.loads((DATA / "dsse-test-vector.json").read_bytes())
    env = vector["envelope"]
    assert pae(env["payloadType"], base64.b64decode(env["payload"])) == vector["pae"].encode()
    numbers = ec.EllipticCurvePublicNumbers(int(vector["key"]["x"]), int(vector["key"]["y"]), ec.SECP256R1())
    pem = numbers.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = base64.b64decode(env["signatures"][0]["sig"])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    as_der = dict(env, signatures=[{"sig": base64.b64encode(der).decode()}])
    assert verify_dsse(as_der, pem) == ("http://example.com/HelloWorld", b"hello world")
    urlsafe = dict(env, signatures=[{"sig": base64.urlsafe_b64encode(der).decode()}])
    assert verify_dsse(urlsafe, pem)[1] == b"hello world"
    with pytest.raises(ClaimsError, match="payloadType"):
        read_statement(*verify_dsse(as_der, pem), "sha256:" + "0" * 64)


# --- OCI layouts -------------------------------------------------------------------------------


def write_layout(root: Path, manifests: list[tuple[bytes, list[Blob], dict[str, Any]]]) -> None:
    """An OCI image layout holding ``manifests`` (body, blobs, extra index.json descriptor fields)."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for body, blobs, extra in manifests:
        for blob in [*blobs, Blob(body, OCI_MANIFEST)]:
            (root / "blobs" / "sha256" / hashlib.sha256(blob.data).hexdigest()).write_bytes(blob.data)
        entries.append({"mediaType": OCI_MANIFEST, "size": len(body), "digest": sha256_digest(body), **extra})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    (root / "index.json").write_text(json.dumps(index))


def test_layout_found_by_ref_name(tmp_path: Path) -> None:
    digest = "sha256:" + "c" * 64
    key, other = new_key(), new_key()
    payload = simple_signing(digest)
    sig = manifest_for([signature_layer(key, payload)])
    att = manifest_for([attestation_layer(envelope(key, statement(digest)))])
    write_layout(tmp_path / "a", [
        (*sig, {"annotations": {REF_NAME_ANNOTATION: signature_tag(digest)}}),
        (*att, {"annotations": {REF_NAME_ANNOTATION: f"registry.example/app:{attestation_tag(digest)}"}}),
    ])  # fmt: skip
    assert verify_layout_signatures(tmp_path / "a", digest, public_pem(key)) == [json.loads(payload)]
    assert verify_layout_attestations(tmp_path / "a", digest, public_pem(key), predicate_type=PREDICATE)
    with pytest.raises(SignatureError):
        verify_layout_signatures(tmp_path / "a", digest, public_pem(other))
    with pytest.raises(NotFoundError):
        verify_layout_signatures(tmp_path / "a", "sha256:" + "d" * 64, public_pem(key))
    # A blob changed on disk.
    payload_file = tmp_path / "a" / "blobs" / "sha256" / hashlib.sha256(payload).hexdigest()
    payload_file.write_bytes(payload.replace(b"null", b"{}  "))
    with pytest.raises(DigestMismatchError):
        verify_layout_signatures(tmp_path / "a", digest, public_pem(key))


def test_layout_found_by_subject(tmp_path: Path) -> None:
    digest = "sha256:" + "e" * 64
    key = new_key()
    subject = {"mediaType": OCI_MANIFEST, "size": 1, "digest": digest}
    payload = simple_signing(digest)
    sig = manifest_for([signature_layer(key, payload)], {"artifactType": SIGNATURE_ARTIFACT_TYPE, "subject": subject})
    att = manifest_for([attestation_layer(envelope(key, statement(digest)))],
                       {"artifactType": ATTESTATION_ARTIFACT_TYPE, "subject": subject})  # fmt: skip
    decoy = manifest_for([signature_layer(key, simple_signing(digest))],
                         {"artifactType": "application/example", "subject": subject})  # fmt: skip
    write_layout(tmp_path / "l", [(*decoy, {}), (*sig, {}), (*att, {})])
    assert verify_layout_signatures(tmp_path / "l", digest, public_pem(key)) == [json.loads(payload)]
    assert len(verify_layout_attestations(tmp_path / "l", digest, public_pem(key))) == 1
    write_layout(tmp_path / "m", [(*decoy, {})])
    with pytest.raises(NotFoundError, match="no sig manifest"):
        verify_layout_signatures(tmp_path / "m", digest, public_pem(key))
