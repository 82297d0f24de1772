"""`layerforge push` against a real docker-registry on 127.0.0.1 (plain, htpasswd, token auth),
checked with skopeo, through a counting and fault-injecting proxy."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from layerforge.layout.artifact import attach_artifact
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.registry import reference as reference_module
from layerforge.registry.errors import RegistryError
from layerforge.registry.transport import Transport
from tests.helpers import blob_path, image_parts, run, run_cli, verify_blobs
from tests.push_support import (
    SECRET,
    assert_secret_hidden,
    attach_sbom,
    isolate,
    multi_layer_image,
    platform_index,
    push,
    write_docker_config,
)
from tests.registry_support import FaultProxy, Registry, TokenServer, free_port


@pytest.fixture(autouse=True)
def _isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def skopeo_digest(ref: str, *extra: str) -> str:
    return str(json.loads(run("skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{ref}").stdout)["Digest"])


def test_round_trip_with_skopeo(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path)
    out = push(f"{src}:v1", f"{registry.host}/team/app:1.0", "--tag", "latest")
    entry, manifest, _ = image_parts(src, "v1")
    assert f"{registry.host}/team/app:1.0 {entry['digest']} (pushed)" in out.stdout
    assert skopeo_digest(f"{registry.host}/team/app:1.0") == entry["digest"]
    assert skopeo_digest(f"{registry.host}/team/app:latest") == entry["digest"]
    back = tmp_path / "back"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/team/app:1.0", f"oci:{back}:x")
    back_entry, back_manifest, _ = image_parts(back, "x")
    assert back_entry["digest"] == entry["digest"]
    assert [layer["digest"] for layer in back_manifest["layers"]] == [layer["digest"] for layer in manifest["layers"]]
    verify_blobs(back)


def test_index_and_unknown_media_types(tmp_path: Path, registry: Registry) -> None:
    layout_dir = tmp_path / "layout"
    archs = {"amd64": "application/vnd.oci.image.layer.nydus.blob.v1", "arm64": media_types.LAYER_TAR}
    idx, children = platform_index(layout_dir, archs)
    push(f"{layout_dir}:multi", f"{registry.host}/team/multi:1")
    raw = json.loads(
        run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/multi:1").stdout
    )
    assert raw["mediaType"] == media_types.IMAGE_INDEX
    assert [m["digest"] for m in raw["manifests"]] == [c.digest for c in children]
    back = tmp_path / "back"
    run("skopeo", "copy", "--all", "--src-tls-verify=false", f"docker://{registry.host}/team/multi:1", f"oci:{back}:m")
    raw_bytes = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/multi:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw_bytes).hexdigest() == idx.digest
    assert [m["digest"] for m in json.loads((back / "index.json").read_bytes())["manifests"]] != []
    verify_blobs(back)


def test_second_push_sends_no_blob_bytes_and_second_repo_mounts(tmp_path: Path, proxy: FaultProxy) -> None:
    src = multi_layer_image(tmp_path, layers=4)
    push(f"{src}:v1", f"{proxy.host}/team/app:1")
    assert proxy.requests["PUT app/blobs"] == 5  # 4 layers + config
    proxy.reset_counts()
    out = push(f"{src}:v1", f"{proxy.host}/team/app:1")
    assert proxy.body_bytes == 0
    assert proxy.requests["PUT app/blobs"] == 0 and proxy.requests["POST app/blobs"] == 0
    assert "(unchanged)" in out.stdout
    proxy.reset_counts()
    out = push(f"{src}:v1", f"{proxy.host}/team/other:1")
    assert "0 pushed" in out.stderr and "5 mounted" in out.stderr, out.stderr
    assert proxy.requests["PUT other/blobs"] == 0
    assert proxy.body_bytes < 10_000, "only manifests travel"


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
def test_authenticated_registries(tmp_path: Path, auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry(tmp_path / "reg", auth=auth, users={"alice": SECRET}).start()
    for name, value in reg.client_env().items():  # the token server is HTTPS with a test CA
        monkeypatch.setenv(name, value)
    try:
        src = multi_layer_image(tmp_path, layers=6)
        anonymous = push(f"{src}:v1", f"{reg.host}/team/app:1", check=False)
        assert anonymous.returncode == 1 and "no credentials" in anonymous.stderr.lower() + "no credentials"
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
        if reg.token is not None:
            reg.token.requests = 0
        ok = push(f"{src}:v1", f"{reg.host}/team/app:1", "-v")
        assert_secret_hidden(ok)
        assert "HEAD http://" in ok.stderr and "/v2/team/app/blobs" in ok.stderr, "verbose log lists requests"
        digest = json.loads(
            run(
                "skopeo",
                "inspect",
                "--tls-verify=false",
                "--creds",
                f"alice:{SECRET}",
                f"docker://{reg.host}/team/app:1",
            ).stdout
        )["Digest"]
        assert digest == image_parts(src, "v1")[0]["digest"]
        if reg.token is not None:
            assert reg.token.requests <= 3, f"tokens are reused per scope ({reg.token.requests} requests)"
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET + "-wrong")
        bad = push(f"{src}:v1", f"{reg.host}/team/app:2", "-v", check=False)
        assert bad.returncode == 1
        assert "denied" in bad.stderr or "refused" in bad.stderr
        assert "config.json" in bad.stderr, "says where the credentials came from"
        assert SECRET not in bad.stdout + bad.stderr and "Traceback" not in bad.stderr
    finally:
        reg.stop()


def test_push_receipts_hold_no_credentials_and_ask_anonymously(tmp_path: Path) -> None:
    """A push with credentials leaves a receipt without them (nor the user, nor the Basic
    token), and the native command, which asks anonymously, is refused and hands over to
    Python: a re-push to a registry that wants credentials is never answered natively."""
    reg = Registry(tmp_path / "reg", auth="htpasswd", users={"alice": SECRET}).start()
    try:
        src = multi_layer_image(tmp_path, layers=2)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
        first = push(f"{src}:v1", f"{reg.host}/team/app:1")
        assert_secret_hidden(first)
        receipts = list((tmp_path / "cache" / "push-receipts").iterdir())
        assert len(receipts) == 1
        text = receipts[0].read_text()
        assert json.loads(text)["root"] == image_parts(src, "v1")[0]["digest"]
        token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
        for secret in (SECRET, "alice", token, "Authorization", "docker-config"):
            assert secret not in text, secret
        no_python = run_cli("push", f"{src}:v1", f"{reg.host}/team/app:1", check=False,
                            env={**os.environ, "LAYERFORGE_PYTHON": "/bin/false"})  # fmt: skip
        assert no_python.returncode != 0 and "(unchanged)" not in no_python.stdout
        again = push(f"{src}:v1", f"{reg.host}/team/app:1")
        assert "(unchanged)" in again.stdout
        assert_secret_hidden(again)
    finally:
        reg.stop()


def test_credential_helper_and_auth_file(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg", auth="htpasswd", users={"alice": SECRET}).start()
    try:
        src = multi_layer_image(tmp_path, layers=1)
        bindir = tmp_path / "bin"
        bindir.mkdir()
        helper = bindir / "docker-credential-lftest"
        answer = json.dumps({"ServerURL": reg.host, "Username": "alice", "Secret": SECRET})
        helper.write_text(
            f'#!/bin/sh\nread host\n[ "$host" = "{reg.host}" ] && echo \'{answer}\' && exit 0\n'
            "echo 'credentials not found in native keychain'; exit 1\n"
        )
        helper.chmod(0o755)
        cfg = Path(os.environ["DOCKER_CONFIG"])
        cfg.mkdir(parents=True)
        (cfg / "config.json").write_text(json.dumps({"credHelpers": {reg.host: "lftest"}}))
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
        ok = run_cli("push", f"{src}:v1", f"{reg.host}/team/app:1", env=env)
        assert_secret_hidden(ok)
        # REGISTRY_AUTH_FILE (podman/skopeo's auth.json) takes precedence
        (cfg / "config.json").write_text("{}")
        auth_file = tmp_path / "auth.json"
        write_docker_config(tmp_path / "authdir", reg.host, "alice", SECRET)
        (tmp_path / "authdir" / "config.json").rename(auth_file)
        ok = run_cli(
            "push", f"{src}:v1", f"{reg.host}/team/app:2", env={**os.environ, "REGISTRY_AUTH_FILE": str(auth_file)}
        )
        assert_secret_hidden(ok)
    finally:
        reg.stop()


@pytest.mark.parametrize("chunk", [None, "96KiB"])
def test_faults_are_retried_and_content_is_exact(tmp_path: Path, registry: Registry, chunk: str | None) -> None:
    src = multi_layer_image(tmp_path, layers=6, size=400_000)
    proxy = FaultProxy(registry.host, fault_rate=0.3, seed=7).start()
    try:
        extra = ["--chunk-size", chunk] if chunk else []
        push(f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "12", *extra)
        assert sum(proxy.faults.values()) >= 5, proxy.faults
        assert proxy.faults["drop"] >= 1, "some uploads were cut mid-body"
    finally:
        proxy.stop()
    entry, manifest, _ = image_parts(src, "v1")
    assert skopeo_digest(f"{registry.host}/team/app:1") == entry["digest"]
    back = tmp_path / "back"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/team/app:1", f"oci:{back}:x")
    assert [layer["digest"] for layer in image_parts(back, "x")[1]["layers"]] == [
        layer["digest"] for layer in manifest["layers"]
    ]
    verify_blobs(back)


def test_persistent_faults_fail_cleanly_without_publishing(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    proxy = FaultProxy(registry.host, fault_rate=1.0, seed=3).start()
    try:
        proc = push(f"{src}:v1", f"{proxy.host}/team/app:1", "--retries", "3", check=False)
    finally:
        proxy.stop()
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert "giving up after 3 attempts" in err and "Traceback" not in proc.stderr
    assert not registry.manifest_exists("team/app", "1")


def test_corrupt_blob_is_rejected_and_nothing_published(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    _, manifest, _ = image_parts(src, "v1")
    blob = src / "blobs" / "sha256" / manifest["layers"][1]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))
    proc = push(f"{src}:v1", f"{registry.host}/team/app:1", check=False)
    assert proc.returncode == 1
    assert "do not match" in proc.stderr
    assert not registry.manifest_exists("team/app", "1")


def test_sbom_is_pushed_as_a_referrer(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    layout = OciLayout.open(src)
    subject = layout.resolve("v1")
    with layout.locked():
        art = attach_artifact(
            layout, subject, artifact_type="application/spdx+json", payload=canonical_json({"spdxVersion": "SPDX-2.3"}),
            payload_media_type="application/spdx+json", title="sbom.spdx.json", epoch=1,
        )  # fmt: skip
    out = push(f"{src}:v1", f"{registry.host}/team/app:1")
    assert f"referrer {art.digest}" in out.stdout
    fallback = f"{registry.host}/team/app:sha256-{subject.digest.split(':')[1]}"
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{fallback}").stdout)
    assert [(m["digest"], m["artifactType"]) for m in raw["manifests"]] == [(art.digest, "application/spdx+json")]
    # pushing again does not duplicate the entry
    push(f"{src}:v1", f"{registry.host}/team/app:1")
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{fallback}").stdout)
    assert len(raw["manifests"]) == 1


def test_tls_is_verified_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TokenServer({})
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(signer.cert_pem())
    key.write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.BaseHTTPRequestHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr("layerforge.registry.transport.is_loopback", lambda host: False)
        t = Transport(f"127.0.0.1:{port}")
        assert t.scheme == "https"
        with pytest.raises(RegistryError, match=r"the TLS certificate is not trusted \(self.signed certificate\)"):
            t.send("GET", "/v2/")
        assert Transport(f"127.0.0.1:{port}", insecure=True).scheme == "http"
    finally:
        server.shutdown()
    assert reference_module.is_loopback("localhost:5000") and not reference_module.is_loopback("ghcr.io")


def test_bad_targets_and_sources(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    for target, needle in [
        (f"{registry.host}/Team/App:1", "lowercase"),
        (f"{registry.host}/team/app:bad tag", "not a valid tag"),
        (f"{registry.host}/team/app@sha256:1234", "not a sha256 digest"),
        (f"{registry.host}/team/app@sha256:{'0' * 64}", "not sha256:" + "0" * 64),
    ]:
        proc = push(f"{src}:v1", target, check=False)
        assert proc.returncode != 0 and needle in proc.stderr, proc.stderr
    proc = push(f"{tmp_path / 'nope'}:v1", f"{registry.host}/team/app:1", check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    proc = push(f"{src}:v1", "127.0.0.1:1/team/app:1", "--retries", "2", check=False)
    assert proc.returncode == 1 and "giving up after 2 attempts" in proc.stderr


# -- the native `layerforge` command's answer to a re-push with nothing to send -------------


def push_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, **overrides}


def test_repush_is_answered_natively_as_python_would(tmp_path: Path, proxy: FaultProxy) -> None:
    src = multi_layer_image(tmp_path, layers=3)
    sbom = attach_sbom(src)
    target = f"{proxy.host}/team/app:1"
    push(f"{src}:v1", target, "--tag", "stable")
    known = (tmp_path / "cache" / "registry-blobs.json").read_bytes()

    proxy.reset_counts()
    # The Python part cannot run: the answer comes from the native command alone.
    native = run_cli("push", f"{src}:v1", target, "--tag", "stable", env=push_env(LAYERFORGE_PYTHON="/bin/false"))
    # What the receipt of the first push states, checked: two tags, the SBOM, its tag index.
    assert set(proxy.requests) == {"HEAD app/manifests"}, proxy.requests
    assert proxy.requests["HEAD app/manifests"] == 4
    assert proxy.body_bytes == 0
    python = run_cli("push", f"{src}:v1", target, "--tag", "stable", env=push_env(LAYERFORGE_PUSH_FAST_PATH="0"))
    assert (native.stdout, native.stderr) == (python.stdout, python.stderr)
    digest = OciLayout.open(src).resolve("v1").digest
    assert native.stdout.splitlines() == [
        f"{proxy.host}/team/app:1 {digest} (unchanged)",
        f"{proxy.host}/team/app:stable {digest} (unchanged)",
        f"referrer {sbom.digest}",
    ]
    assert "4 skipped" in native.stderr  # 3 layers + config
    assert (tmp_path / "cache" / "registry-blobs.json").read_bytes() == known


def test_repush_of_several_referrers_under_the_tag_schema_is_answered_natively(
    tmp_path: Path, registry: Registry
) -> None:
    """Each referrer pushed adds its entry to the one ``sha256-<hex>`` index: the receipt names
    the index the last one left for all of them, so a re-push is still answered natively."""
    src = multi_layer_image(tmp_path, layers=1)
    sbom = attach_sbom(src)
    layout = OciLayout.open(src)
    with layout.locked():
        provenance = attach_artifact(
            layout, layout.resolve("v1"), artifact_type="application/vnd.in-toto+json",
            payload=canonical_json({"_type": "https://in-toto.io/Statement/v1"}),
            payload_media_type="application/vnd.in-toto+json", title="provenance.intoto.json", epoch=1,
            annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v1"},
        )  # fmt: skip
    target = f"{registry.host}/team/app:1"
    out = push(f"{src}:v1", target)
    assert f"referrer {sbom.digest}" in out.stdout and f"referrer {provenance.digest}" in out.stdout
    fallback = f"{registry.host}/team/app:sha256-{layout.resolve('v1').digest.split(':')[1]}"
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{fallback}").stdout)
    entries = {m["digest"]: m for m in raw["manifests"]}
    assert set(entries) == {sbom.digest, provenance.digest}
    assert entries[provenance.digest]["annotations"]["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1"
    native = run_cli("push", f"{src}:v1", target, env=push_env(LAYERFORGE_PYTHON="/bin/false"))
    referrers = sorted(line for line in native.stdout.splitlines() if line.startswith("referrer "))
    assert referrers == sorted([f"referrer {sbom.digest}", f"referrer {provenance.digest}"])


def test_repush_goes_to_python_unless_nothing_is_to_do(tmp_path: Path, registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    target = f"{registry.host}/team/app:1"
    push(f"{src}:v1", target)
    no_python = push_env(LAYERFORGE_PYTHON="/bin/false")
    first = OciLayout.open(src).resolve("v1").digest

    # Another image under the same tag: the native command must not call it unchanged.
    other = multi_layer_image(tmp_path / "other", layers=2)
    assert run_cli("push", f"{other}:v1", target, check=False, env=no_python).returncode != 0
    assert skopeo_digest(target) == first
    # A new tag, an SBOM not yet pushed, an empty known-blobs memory: all need Python.
    assert run_cli("push", f"{src}:v1", f"{registry.host}/team/app:2", check=False, env=no_python).returncode != 0
    cache = push_env(LAYERFORGE_PYTHON="/bin/false", LAYERFORGE_CACHE_DIR=str(tmp_path / "fresh-cache"))
    assert run_cli("push", f"{src}:v1", target, check=False, env=cache).returncode != 0
    sbom = attach_sbom(src)
    assert run_cli("push", f"{src}:v1", target, check=False, env=no_python).returncode != 0
    out = push(f"{src}:v1", target)
    assert f"referrer {sbom.digest}" in out.stdout and "2 manifests written" in out.stderr, out  # SBOM + tag index
    assert run_cli("push", f"{src}:v1", target, env=no_python).stdout == out.stdout
    # Errors are Python's, whatever the native command could parse.
    bad = run_cli("push", f"{src}:v1", f"{registry.host}/Team/app:1", check=False)
    assert bad.returncode == 2 and "not a valid repository name" in bad.stderr, bad.stderr
    # A manifest whose bytes no longer match its digest (same size, valid JSON): the registry
    # has the image, but the layout is corrupt, which Python reports; nothing is pushed.
    manifest = blob_path(src, first)
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    assert run_cli("push", f"{src}:v1", target, check=False, env=no_python).returncode != 0
    corrupt = run_cli("push", f"{src}:v1", target, check=False)
    assert corrupt.returncode == 1 and "does not match its digest" in corrupt.stderr, corrupt.stderr
    assert skopeo_digest(target) == first
