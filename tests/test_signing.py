"""Signing and attesting images in cosign's format (`push --sign-key`, `sign`, `attest`,
`verify`), checked by the independent reader in tests/cosign_oracle.py (written from cosign's
spec, DSSE through securesystemslib) against a real docker-registry on 127.0.0.1: a signed image
verifies; an unsigned one, one signed by another key, and one whose manifest changed after
signing are refused, by the oracle and by `layerforge verify`, in one line."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from layerforge._native import generate_cosign_key_pair
from layerforge.layout.oci_layout import open_for_write
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from tests import cosign_oracle as oracle
from tests.helpers import image_parts, run_cli
from tests.push_support import attach_sbom, isolate, multi_layer_image, platform_index, push
from tests.registry_support import Registry

PASSWORD = "correct horse battery staple"
SPDX = "https://spdx.dev/Document"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)


def openssl_style_key(path: Path) -> bytes:
    """A P-256 key as an unencrypted PKCS#8 PEM (what `openssl genpkey` writes); its public PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (path.parent / (path.stem + ".pub")).write_bytes(pub)
    return pub


def cli(*args: object, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*map(str, args), check=check, env={**os.environ, **(env or {})})


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command prints (status 1, no traceback)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("layerforge ") and ": error: " in lines[0], proc.stderr
    return lines[0]


def base(registry: Registry) -> str:
    return f"http://{registry.host}"


def put_manifest(registry: Registry, repo: str, reference: str, body: bytes) -> None:
    """PUT a manifest straight into the registry (what an attacker with push access can do)."""
    media_type = json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
    put = urllib.request.Request(
        f"{base(registry)}/v2/{repo}/manifests/{reference}",
        data=body,
        method="PUT",
        headers={"Content-Type": media_type},
    )
    urllib.request.urlopen(put, timeout=30).close()


def test_push_sign_key_signs_as_cosign_does(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")
    out = push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "key.pem")
    tag = oracle.signature_tag(entry["digest"])
    assert f"{registry.host}/team/app:{tag}" in out.stdout and "(added)" in out.stdout, out
    payloads = oracle.verify_signatures(
        base(registry), "team/app", entry["digest"], pub, docker_reference=f"{registry.host}/team/app"
    )
    assert [p["critical"]["image"]["docker-manifest-digest"] for p in payloads] == [entry["digest"]]
    ok = cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1")
    assert f"{entry['digest']}: signature ({registry.host}/team/app) verified" in ok.stdout, ok

    # Pushing and signing again with the same key: the same signature, nothing added.
    again = push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "key.pem")
    assert f"{tag} " in again.stdout and "(unchanged)" in again.stdout, again
    manifest = json.loads(oracle.fetch_manifest(base(registry), "team/app", tag))
    assert len(manifest["layers"]) == 1
    # It names the image as its subject: registries with the referrers API list it with the image.
    assert manifest["subject"] == {"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"]}
    assert manifest["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"


def test_unsigned_other_key_and_changed_image_are_refused(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    other_pub = openssl_style_key(tmp_path / "other.pem")
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")

    # Unsigned.
    push(f"{src}:v1", f"{registry.host}/team/app:1")
    with pytest.raises(oracle.NotFoundError):
        oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    line = one_error_line(
        cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1", check=False)
    )
    assert f"{entry['digest']} is not signed" in line, line

    # Signed by another key.
    push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "other.pem")
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], other_pub)
    with pytest.raises(oracle.SignatureError):
        oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    line = one_error_line(
        cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1", check=False)
    )
    assert "no signature of" in line and "key.pub" in line, line

    # Signed, then its signature tampered with (another signature's bytes in the annotation).
    push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "key.pem")
    tag = oracle.signature_tag(entry["digest"])
    sig_manifest = json.loads(oracle.fetch_manifest(base(registry), "team/app", tag))
    other_sig, mine = (layer["annotations"]["dev.cosignproject.cosign/signature"] for layer in sig_manifest["layers"])
    for layer in sig_manifest["layers"]:
        layer["annotations"]["dev.cosignproject.cosign/signature"] = other_sig
    put_manifest(registry, "team/app", tag, json.dumps(sig_manifest).encode())
    with pytest.raises(oracle.SignatureError):
        oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    line = one_error_line(
        cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1", check=False)
    )
    assert "no signature of" in line, line
    assert mine != other_sig

    # Signed, then the tag moved to a changed image: its digest has no signature.
    push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "key.pem")
    changed = multi_layer_image(tmp_path / "changed")
    changed_entry, _, _ = image_parts(changed, "v1")
    push(f"{changed}:v1", f"{registry.host}/team/app:1")
    line = one_error_line(
        cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1", check=False)
    )
    assert f"{changed_entry['digest']} is not signed" in line, line

    # The first image's signature object put where the changed image's would be: its payload
    # names the first image, so it is no signature of the changed one.
    sig = oracle.fetch_manifest(base(registry), "team/app", oracle.signature_tag(entry["digest"]))
    put_manifest(registry, "team/app", oracle.signature_tag(changed_entry["digest"]), sig)
    with pytest.raises(oracle.ClaimsError):
        oracle.verify_signatures(base(registry), "team/app", changed_entry["digest"], pub)
    line = one_error_line(
        cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/app:1", check=False)
    )
    assert f"names {entry['digest']}, not {changed_entry['digest']}" in line, line


def test_cosign_encrypted_key_needs_its_password(tmp_path: Path, registry: Registry) -> None:
    private, public = generate_cosign_key_pair(PASSWORD.encode())
    (tmp_path / "cosign.key").write_bytes(private)
    (tmp_path / "cosign.pub").write_bytes(public)
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in private
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")

    failed = push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "cosign.key", check=False)
    line = one_error_line(failed)
    assert "cosign.key" in line and "COSIGN_PASSWORD" in line, line
    assert not registry.manifest_exists("team/app", "1")  # the key is read before anything is pushed
    wrong = cli("push", f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "cosign.key",
                check=False, env={"COSIGN_PASSWORD": "not it"})  # fmt: skip
    assert "cosign.key" in one_error_line(wrong) and "not it" not in wrong.stderr + wrong.stdout

    out = cli("push", f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "cosign.key",
              env={"COSIGN_PASSWORD": PASSWORD})  # fmt: skip
    assert PASSWORD not in out.stdout + out.stderr
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], public)


def test_key_from_environment_never_printed(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    pem = (tmp_path / "key.pem").read_text()
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")
    record = tmp_path / "publish.json"
    out = cli("push", "-v", f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", "env://SIGNING_KEY",
              "--record", record, env={"SIGNING_KEY": pem})  # fmt: skip
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    body = pem.split("-----")[2].strip().splitlines()[0]  # a line of the key's base64
    assert body not in out.stdout + out.stderr and body not in record.read_text()
    assert not any(body.encode() in p.read_bytes() for p in src.rglob("*") if p.is_file())
    missing = one_error_line(cli("push", f"{src}:v1", f"{registry.host}/team/app:2", "--sign-key", "env://NOPE",
                                 check=False))  # fmt: skip
    assert "env://NOPE" in missing and "not set" in missing, missing


def test_sign_a_layout_then_push_it(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")
    before = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = cli("sign", "--key", tmp_path / "key.pem", "--reference", f"{registry.host}/team/app", f"{src}:v1")
    assert "(added)" in out.stdout, out
    # The layout gained the signature object and nothing else changed but index.json.
    after = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k in before and k != Path("index.json")} == {
        k: v for k, v in before.items() if k != Path("index.json")
    }
    oracle.verify_layout_signatures(src, entry["digest"], pub, docker_reference=f"{registry.host}/team/app")
    cli("verify", "--key", tmp_path / "key.pub", f"{src}:v1")
    again = cli("sign", "--key", tmp_path / "key.pem", "--reference", f"{registry.host}/team/app", f"{src}:v1")
    assert "(unchanged)" in again.stdout, again

    # Pushed without a key: the layout's signature goes where cosign looks for it.
    pushed = push(f"{src}:v1", f"{registry.host}/team/app:1")
    assert oracle.signature_tag(entry["digest"]) in pushed.stdout, pushed
    oracle.verify_signatures(
        base(registry), "team/app", entry["digest"], pub, docker_reference=f"{registry.host}/team/app"
    )

    # A second key's signature, pushed from another layout copy, joins the first.
    other_pub = openssl_style_key(tmp_path / "other.pem")
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    cli("sign", "--key", tmp_path / "other.pem", "--reference", f"{registry.host}/team/app", f"{copy}:v1")
    push(f"{copy}:v1", f"{registry.host}/team/app:1")
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], other_pub)
    manifest = json.loads(oracle.fetch_manifest(base(registry), "team/app", oracle.signature_tag(entry["digest"])))
    assert len(manifest["layers"]) == 2


def test_layout_changed_after_signing_is_refused(tmp_path: Path) -> None:
    openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    cli("sign", "--key", tmp_path / "key.pem", "--reference", "registry.example/team/app", f"{src}:v1")
    # The image under v1 replaced by another one (a rebuild): the signature is of the old digest.
    other = multi_layer_image(tmp_path / "other")
    other_entry, _, _ = image_parts(other, "v1")
    for blob in (other / "blobs" / "sha256").iterdir():
        shutil.copy(blob, src / "blobs" / "sha256" / blob.name)
    index = json.loads((src / "index.json").read_text())
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1":
            m.update(digest=other_entry["digest"], size=other_entry["size"])
    (src / "index.json").write_text(json.dumps(index))
    line = one_error_line(cli("verify", "--key", tmp_path / "key.pub", f"{src}:v1", check=False))
    assert f"{other_entry['digest']} is not signed" in line, line


def test_attestations_of_the_layout_sbom_and_a_predicate(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    attach_sbom(src)
    entry, _, _ = image_parts(src, "v1")
    push(f"{src}:v1", f"{registry.host}/team/app:1", "--sign-key", tmp_path / "key.pem")
    statements = oracle.verify_attestations(
        base(registry), "team/app", entry["digest"], pub, predicate_type=SPDX, statement_types=[oracle.STATEMENT_V1]
    )
    assert len(statements) == 1 and statements[0]["subject"][0]["name"] == f"{registry.host}/team/app"
    sbom_doc = statements[0]["predicate"]
    assert sbom_doc["spdxVersion"].startswith("SPDX-"), sbom_doc

    # A predicate attested to the registry image with `attest`, verified by `verify --type`.
    predicate = tmp_path / "vuln.json"
    predicate.write_text(json.dumps({"scanner": {"uri": "https://example.com/scanner"}, "result": []}))
    cli("attest", "--key", tmp_path / "key.pem", "--predicate", predicate, "--type", "https://example.com/vuln/v1",
        f"docker://{registry.host}/team/app:1")  # fmt: skip
    found = oracle.verify_attestations(
        base(registry), "team/app", entry["digest"], pub, predicate_type="https://example.com/vuln/v1"
    )
    assert found[0]["predicate"] == json.loads(predicate.read_text())
    ok = cli("verify", "--key", tmp_path / "key.pub", "--attestations", "--type", "spdxjson",
             f"docker://{registry.host}/team/app:1")  # fmt: skip
    assert f"{entry['digest']}: attestation {SPDX} verified" in ok.stdout, ok
    other_pub_path = tmp_path / "other.pub"
    other_pub_path.write_bytes(openssl_style_key(tmp_path / "other.pem"))
    refused = cli("verify", "--key", other_pub_path, "--attestations", f"docker://{registry.host}/team/app:1",
                  check=False)  # fmt: skip
    assert "verifies with" in one_error_line(refused)


def test_hostile_signature_objects_are_one_line(tmp_path: Path, registry: Registry) -> None:
    openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")
    push(f"{src}:v1", f"{registry.host}/team/app:1")
    tag = oracle.signature_tag(entry["digest"])
    stored = 0
    for body in (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}',
                 json.dumps({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64,
                             "size": 1}, "layers": "nope"}).encode()):  # fmt: skip
        try:
            put_manifest(registry, "team/app", tag, body)
        except urllib.error.HTTPError:
            continue  # the registry refused to store it: nothing to read back
        stored += 1
        for cmd in (("verify", "--key", tmp_path / "key.pub"), ("sign", "--key", tmp_path / "key.pem")):
            proc = cli(*cmd, f"docker://{registry.host}/team/app:1", check=False)
            assert tag in one_error_line(proc), proc
    assert stored, "the registry stored none of the hostile objects: nothing was read back"


def test_an_index_is_signed_with_every_image_it_lists(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    layout_dir = tmp_path / "layout"
    idx, children = platform_index(
        layout_dir, {"amd64": media_types.LAYER_TAR, "arm64": media_types.LAYER_TAR}, size=100
    )
    out = push(f"{layout_dir}:multi", f"{registry.host}/team/multi:1", "--sign-key", tmp_path / "key.pem")
    for digest in (idx.digest, *(c.digest for c in children)):
        assert oracle.signature_tag(digest) in out.stdout, out
        oracle.verify_signatures(
            base(registry), "team/multi", digest, pub, docker_reference=f"{registry.host}/team/multi"
        )
    ok = cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/multi:1")
    assert ok.stdout.count("verified") == 3, ok
    # One child's signature gone: the index does not verify.
    req = urllib.request.Request(
        f"{base(registry)}/v2/team/multi/manifests/{oracle.signature_tag(children[1].digest)}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        method="HEAD",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        sig_digest = resp.headers["Docker-Content-Digest"]
    delete = urllib.request.Request(f"{base(registry)}/v2/team/multi/manifests/{sig_digest}", method="DELETE")
    urllib.request.urlopen(delete, timeout=30).close()
    line = one_error_line(cli("verify", "--key", tmp_path / "key.pub", f"docker://{registry.host}/team/multi:1",
                              check=False))  # fmt: skip
    assert f"{children[1].digest} is not signed" in line, line


def test_attest_a_layout_from_its_sbom_then_push(tmp_path: Path, registry: Registry) -> None:
    pub = openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    attach_sbom(src)
    entry, _, _ = image_parts(src, "v1")
    cli("attest", "--key", tmp_path / "key.pem", "--reference", f"{registry.host}/team/app", f"{src}:v1")
    (statement,) = oracle.verify_layout_attestations(src, entry["digest"], pub, predicate_type=SPDX)
    assert statement["subject"][0]["name"] == f"{registry.host}/team/app"
    ok = cli("verify", "--key", tmp_path / "key.pub", "--type", "spdxjson", f"{src}:v1", check=False)
    assert "is not signed" in one_error_line(ok)  # attested, not signed: verify wants both
    cli("sign", "--key", tmp_path / "key.pem", "--reference", f"{registry.host}/team/app", f"{src}:v1")
    cli("verify", "--key", tmp_path / "key.pub", "--type", "spdxjson", f"{src}:v1")
    push(f"{src}:v1", f"{registry.host}/team/app:1")
    oracle.verify_attestations(base(registry), "team/app", entry["digest"], pub, predicate_type=SPDX)
    oracle.verify_signatures(base(registry), "team/app", entry["digest"], pub)
    # Without an SBOM or provenance there is nothing to attest: one line.
    bare = multi_layer_image(tmp_path / "bare")
    line = one_error_line(cli("attest", "--key", tmp_path / "key.pem", "--reference", "r.example/a", f"{bare}:v1",
                              check=False))  # fmt: skip
    assert "holds no provenance or SBOM" in line, line


def _sign_der(key_pem: Path, message: bytes) -> str:
    key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def _attach_cosign_object(
    layout_dir: Path, subject: dict[str, object], kind: str, layers: list[tuple[bytes, dict[str, str]]]
) -> None:
    """A cosign object built by hand (what a hostile signer can write), kept in the layout as
    `layerforge sign` keeps one."""
    media = {"sig": "application/vnd.dev.cosign.simplesigning.v1+json", "att": "application/vnd.dsse.envelope.v1+json"}
    with open_for_write(layout_dir) as layout:
        descs = [layout.put_blob(body, media[kind]).with_annotations(annotations) for body, annotations in layers]
        cfg = layout.put_blob(b"{}", media_types.IMAGE_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": media_types.IMAGE_MANIFEST, "config": cfg.to_json(),
                    "layers": [d.to_json() for d in descs], "subject": subject,
                    "artifactType": f"application/vnd.dev.cosign.artifact.{kind}.v1+json"}  # fmt: skip
        stored = layout.put_json(manifest, media_types.IMAGE_MANIFEST)
        layout.add_untagged(Descriptor(stored.media_type, stored.digest, stored.size,
                                       artifact_type=manifest["artifactType"]))  # fmt: skip


def test_hostile_shapes_inside_signed_payloads_are_read_not_crashed_on(tmp_path: Path) -> None:
    """A payload the right key signed may still say odd things: an identity that is no object,
    a statement subject whose digest is no object. They name no repository and no image, in
    one line or not at all, never a traceback."""
    openssl_style_key(tmp_path / "key.pem")
    src = multi_layer_image(tmp_path)
    entry, _, _ = image_parts(src, "v1")
    subject = {"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"]}
    critical = {"identity": "not an object", "image": {"docker-manifest-digest": entry["digest"]},
                "type": "cosign container image signature"}  # fmt: skip
    payload = json.dumps({"critical": critical, "optional": None}).encode()
    sig = {"dev.cosignproject.cosign/signature": _sign_der(tmp_path / "key.pem", payload)}
    _attach_cosign_object(src, subject, "sig", [(payload, sig)])
    ok = cli("verify", "--key", tmp_path / "key.pub", f"{src}:v1")
    assert ok.stdout.strip() == f"{entry['digest']}: signature verified", ok

    intoto = "application/vnd.in-toto+json"
    subjects = [{"name": "x", "digest": "sha256:no-object"}]
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://example.com/p",
                            "subject": subjects, "predicate": {}}).encode()  # fmt: skip
    signature = _sign_der(tmp_path / "key.pem", oracle.pae(intoto, statement))
    envelope = json.dumps({"payloadType": intoto, "payload": base64.b64encode(statement).decode(),
                           "signatures": [{"keyid": "", "sig": signature}]}).encode()  # fmt: skip
    _attach_cosign_object(src, subject, "att", [(envelope, {"predicateType": "https://example.com/p"})])
    line = one_error_line(cli("verify", "--key", tmp_path / "key.pub", "--attestations", f"{src}:v1", check=False))
    assert f"no attestation of {entry['digest']} verifies" in line, line
