"""`pants publish` with `[layerforge].sign_key`: a real Pants run signs every image it pushes and
attests it with the provenance and SBOMs the build wrote, in cosign's format, checked by the
independent reader (tests/cosign_oracle.py, DSSE through securesystemslib). The key comes from
an environment variable and is in cosign's encrypted format; neither it nor its password appears
in Pants' output, its log, `dist/` or a cache key."""

from __future__ import annotations

import json
from pathlib import Path

from layerforge._native import generate_cosign_key_pair
from tests import cosign_oracle as oracle
from tests.helpers import run, run_cli
from tests.nix_support import IMAGES_NIX
from tests.pants_support import PantsRepo
from tests.registry_support import Registry
from tests.test_pants_backend import APP_BUILD

PASSWORD = "pants-signing-password-never-print"
SLSA = "https://slsa.dev/provenance/v1"


def test_publish_signs_and_attests_with_the_configured_key(tmp_path: Path) -> None:
    private, public = generate_cosign_key_pair(PASSWORD.encode())
    registry = Registry(tmp_path / "registry").start()
    try:
        repo = PantsRepo(
            tmp_path / "repo",
            f'\n[layerforge.registries.local]\naddress = "{registry.host}"\ndefault = true\n',
        )
        repo.write("images/images.nix", IMAGES_NIX.read_text())
        repo.write("images/BUILD", APP_BUILD.format(version="1.0"))
        env = {"LF_SIGNING_KEY": private.decode(), "COSIGN_PASSWORD": PASSWORD}
        packaged = repo.run("package", "images:app", env=env)
        assert packaged.returncode == 0, packaged.stderr
        signing = ("--layerforge-sign-key=env://LF_SIGNING_KEY", "--layerforge-source-revision=0123abcd")
        published = repo.run(*signing, "publish", "images:app", env=env)
        assert published.returncode == 0, published.stdout + published.stderr
        layout = repo.root / "dist" / "images" / "app"
        digest = json.loads(run("skopeo", "inspect", "--tls-verify=false",
                                f"docker://{registry.host}/team/app:1.0").stdout)["Digest"]  # fmt: skip
        assert digest == json.loads(run("skopeo", "inspect", f"oci:{layout}:1.0").stdout)["Digest"]
        base = f"http://{registry.host}"
        oracle.verify_signatures(base, "team/app", digest, public, docker_reference=f"{registry.host}/team/app")

        statements = oracle.verify_attestations(base, "team/app", digest, public, statement_types=[oracle.STATEMENT_V1])
        by_type = {s["predicateType"]: s for s in statements}
        assert set(by_type) == {SLSA, "https://spdx.dev/Document", "https://cyclonedx.org/bom"}, by_type.keys()
        provenance = by_type[SLSA]
        assert provenance["subject"] == [{"name": f"{registry.host}/team/app", "digest": {"sha256": digest[7:]}}]
        build = provenance["predicate"]["buildDefinition"]
        assert build["externalParameters"]["target"] == "images:app"
        deps = build["resolvedDependencies"]
        assert {"name": "source", "digest": {"gitCommit": "0123abcd"}} in deps
        record = tmp_path / "record.json"
        run_cli("record", f"{layout}:1.0", "--out", record)
        (image,) = json.loads(record.read_bytes())["images"]
        in_layers = {p for layer in image["layers"] for p in layer["storePaths"] or ()}
        named = {d["uri"].removeprefix("nix:") for d in deps if d.get("uri", "").startswith("nix:")}
        assert named == in_layers and in_layers, (named, in_layers)

        # Nothing of the key or its password in what Pants printed, logged or wrote.
        key_line = private.decode().splitlines()[1]
        pants_log = repo.root / ".pants.d" / "pants.log"
        texts = [packaged.stdout, packaged.stderr, published.stdout, published.stderr]
        texts += [pants_log.read_text(errors="replace")] if pants_log.exists() else []
        texts += [p.read_text(errors="replace") for p in (repo.root / "dist").rglob("*.json")]
        for text in texts:
            assert PASSWORD not in text and key_line not in text

        # Publishing again: the same signatures and attestations, nothing added.
        again = repo.run(*signing, "publish", "images:app", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        sig = json.loads(oracle.fetch_manifest(base, "team/app", oracle.signature_tag(digest)))
        att = json.loads(oracle.fetch_manifest(base, "team/app", oracle.attestation_tag(digest)))
        assert len(sig["layers"]) == 1 and len(att["layers"]) == 3, (sig, att)
    finally:
        registry.stop()
