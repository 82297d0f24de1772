"""The attestation documents `nix-image --sbom` attaches next to its SPDX SBOM, read back by
independent readers: a CycloneDX 1.5 BOM (the CycloneDX JSON schema; the same hashes as the
SPDX document and as Nix's own narHash) and an in-toto Statement v1 with an SLSA Provenance v1
predicate (a DSSE envelope of securesystemslib signs and verifies it; its subject is the
manifest skopeo sees, its dependencies the store paths in the layers). Both are reproducible
bit for bit: two builds, the staged commands (what Pants runs) and another spelling of the same
Nix file give the same bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from layerforge.images.nix.closure import Closure, PathInfo
from layerforge.images.nix.plan import BaseInfo, NixPlan
from layerforge.images.nix.provenance import BuildInputs, NixSource, provenance_statement
from tests.helpers import blob_path, image_parts, run, run_cli, validate_schema
from tests.nix_support import FIXTURES, FLAKE, IMAGES_NIX, NIX_COMMAND, build, closure, nix_env, nix_image

pytestmark = pytest.mark.usefixtures("nix_cli_env")

CYCLONEDX_SCHEMAS = Path(__file__).parent / "fixtures" / "cyclonedx"
SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
INTOTO = "application/vnd.in-toto+json"
TITLES = {SPDX: "sbom.spdx.json", CYCLONEDX: "sbom.cdx.json", INTOTO: "provenance.intoto.json"}

#: The in-toto Statement v1 (github.com/in-toto/attestation spec/v1/statement.md) with the SLSA
#: Provenance v1 predicate (slsa.dev/spec/v1.0/provenance), as required fields and types:
#: written from the specifications, independent of the code that makes the statement.
_DIGEST = {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}
_RESOURCE = {
    "type": "object",
    "anyOf": [{"required": ["uri"]}, {"required": ["digest"]}, {"required": ["content"]}],
    "properties": {
        "uri": {"type": "string"},
        "digest": _DIGEST,
        "name": {"type": "string"},
        "annotations": {"type": "object"},
    },
}
STATEMENT_SCHEMA = {
    "type": "object",
    "required": ["_type", "subject", "predicateType", "predicate"],
    "additionalProperties": False,
    "properties": {
        "_type": {"const": "https://in-toto.io/Statement/v1"},
        "subject": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["digest"],
                "properties": {"name": {"type": "string"}, "digest": _DIGEST},
            },
        },
        "predicateType": {"const": "https://slsa.dev/provenance/v1"},
        "predicate": {
            "type": "object",
            "required": ["buildDefinition", "runDetails"],
            "additionalProperties": False,
            "properties": {
                "buildDefinition": {
                    "type": "object",
                    "required": ["buildType", "externalParameters"],
                    "additionalProperties": False,
                    "properties": {
                        "buildType": {"type": "string", "format": "uri"},
                        "externalParameters": {"type": "object"},
                        "internalParameters": {"type": "object"},
                        "resolvedDependencies": {"type": "array", "items": _RESOURCE},
                    },
                },
                "runDetails": {
                    "type": "object",
                    "required": ["builder"],
                    "additionalProperties": False,
                    "properties": {
                        "builder": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string", "format": "uri"}, "version": {"type": "object"}},
                        },
                        "metadata": {"type": "object"},
                        "byproducts": {"type": "array", "items": _RESOURCE},
                    },
                },
            },
        },
    },
}


def artifacts(layout: Path) -> dict[str, tuple[dict[str, Any], bytes]]:
    """artifactType -> (artifact manifest, payload) of each referrer in the layout."""
    out = {}
    for entry in json.loads((layout / "index.json").read_bytes())["manifests"]:
        if entry.get("artifactType"):
            manifest = json.loads(blob_path(layout, entry["digest"]).read_bytes())
            (payload,) = manifest["layers"]
            out[entry["artifactType"]] = (manifest, blob_path(layout, payload["digest"]).read_bytes())
    return out


def nar_hashes_hex(paths: set[str]) -> dict[str, str]:
    """Each store path's NAR sha256 in hex, as Nix itself reports and converts it."""
    info = json.loads(run("nix", *NIX_COMMAND, "path-info", "--json", *sorted(paths), env=nix_env()).stdout)
    items = info.items() if isinstance(info, dict) else ((d["path"], d) for d in info)
    return {
        path: run("nix", *NIX_COMMAND, "hash", "to-base16", d["narHash"], env=nix_env()).stdout.strip()
        for path, d in items
    }


def validate_cyclonedx(bom: Any) -> None:
    """``bom`` against the CycloneDX 1.5 JSON schema (tests/fixtures/cyclonedx)."""
    schemas = {f.name: json.loads(f.read_bytes()) for f in CYCLONEDX_SCHEMAS.glob("*.schema.json")}
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (s["$id"], referencing.jsonschema.DRAFT7.create_resource(s)) for s in schemas.values()
    )
    validator = jsonschema.Draft7Validator(
        schemas["bom-1.5.schema.json"], registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(bom), key=str)
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_cyclonedx_bom_is_valid_and_agrees_with_spdx_and_nix(tmp_path: Path) -> None:
    app = build("app")
    out = tmp_path / "img"
    res = nix_image("--nix-file", IMAGES_NIX, "-A", "app", "--out", out, "--sbom")
    entry, _, _ = image_parts(out)
    found = artifacts(out)
    assert set(found) == {SPDX, CYCLONEDX, INTOTO}
    for artifact_type, (manifest, _) in found.items():
        validate_schema(manifest, "image-manifest-schema.json")
        assert manifest["subject"]["digest"] == entry["digest"]
        assert manifest["artifactType"] == manifest["layers"][0]["mediaType"] == artifact_type
        assert manifest["layers"][0]["annotations"] == {"org.opencontainers.image.title": TITLES[artifact_type]}
        assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    by_type = {e.get("artifactType"): e["digest"] for e in json.loads((out / "index.json").read_bytes())["manifests"]}
    for word, artifact_type in (("sbom", SPDX), ("cyclonedx", CYCLONEDX), ("provenance", INTOTO)):
        assert f"{word} {by_type[artifact_type]}\n" in res.stderr
    bom = json.loads(found[CYCLONEDX][1])
    validate_cyclonedx(bom)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5" and bom["version"] == 1
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", bom["serialNumber"]
    )
    assert bom["metadata"]["timestamp"] == "1970-01-01T00:00:01Z"
    assert bom["metadata"]["tools"]["components"][0]["name"] == "layerforge"
    image = bom["metadata"]["component"]
    assert image["type"] == "container" and image["hashes"] == [{"alg": "SHA-256", "content": entry["digest"][7:]}]
    components = {c["bom-ref"]: c for c in bom["components"]}
    assert set(components) == closure(app)
    spdx = json.loads(found[SPDX][1])
    spdx_sha = {p["packageFileName"]: p["checksums"][0]["checksumValue"] for p in spdx["packages"]}
    nix_sha = nar_hashes_hex(closure(app))
    for path, c in components.items():
        assert c["hashes"] == [{"alg": "SHA-256", "content": spdx_sha[path]}]
        assert spdx_sha[path] == nix_sha[path]
        props = {p["name"]: p["value"] for p in c["properties"]}
        assert props["nix:store_path"] == path and int(props["nix:nar_size"]) > 0
    assert components[app]["name"] == "hello-app" and components[app]["version"] == "1.0"
    assert components[app]["type"] == "application"
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert deps[image["bom-ref"]] == [app]
    assert build("libgreet") in deps[app]
    assert set(deps) == {image["bom-ref"], *closure(app)}


def statement_of(layout: Path) -> tuple[dict[str, Any], bytes]:
    manifest, payload = artifacts(layout)[INTOTO]
    return manifest, payload


def test_provenance_is_an_in_toto_slsa_statement_of_the_image(tmp_path: Path) -> None:
    app, busybox = build("app"), build("busyboxPkg")
    out = tmp_path / "img"
    nix_image(
        "--nix-file", IMAGES_NIX, "-A", "app", "--copy-to-root", busybox, "--out", out, "--sbom",
        "--provenance-target", "images:app", "--image-name", "team/app:1.0", "--compression", "zstd",
    )  # fmt: skip
    manifest, payload = statement_of(out)
    assert manifest["annotations"]["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1"
    # A DSSE envelope of it signs and verifies (what a signer makes of the payload as it is).
    signer = CryptoSigner.generate_ed25519()
    envelope = Envelope(payload=payload, payload_type=INTOTO, signatures={})
    envelope.sign(signer)
    again = Envelope.from_dict(json.loads(json.dumps(envelope.to_dict())))
    assert again.verify([signer.public_key], 1)
    statement = json.loads(again.payload)
    jsonschema.Draft7Validator(STATEMENT_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(
        statement
    )
    skopeo = json.loads(run("skopeo", "inspect", f"oci:{out}:latest").stdout)
    assert statement["subject"] == [
        {"name": "team/app:1.0", "digest": {"sha256": skopeo["Digest"].removeprefix("sha256:")}}
    ]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == "https://layerforge.dev/buildtypes/nix-oci-image/v1"
    external = definition["externalParameters"]
    assert external["target"] == "images:app"
    nix_sha = run("sha256sum", IMAGES_NIX).stdout.split()[0]
    assert external["source"]["nixFile"]["sha256"] == nix_sha and external["source"]["attr"] == "app"
    assert external["options"]["compression"] == "zstd" and external["options"]["epoch"] == 1
    assert external["options"]["copyToRoot"] == [busybox] and external["options"]["roots"] == sorted([app, busybox])
    # The store paths it names are those in the image's layers (the build record's reading).
    record = tmp_path / "record.json"
    run_cli("record", f"{out}:latest", "--out", record)
    (image,) = json.loads(record.read_bytes())["images"]
    in_layers = {p for layer in image["layers"] for p in layer["storePaths"] or ()}
    resolved = definition["resolvedDependencies"]
    store = [d for d in resolved if d.get("uri", "").startswith("nix:")]
    assert {d["uri"].removeprefix("nix:") for d in store} == in_layers == closure(app) | closure(busybox)
    nar = nar_hashes_hex(in_layers)
    assert all(d["digest"] == {"sha256": nar[d["uri"][4:]]} for d in store)
    assert all(d["annotations"]["narSize"] > 0 and d["annotations"]["deriver"].endswith(".drv") for d in store)
    (nix_file,) = [d for d in resolved if "uri" not in d]
    assert nix_file["digest"] == {"sha256": nix_sha} and nix_file["name"] == external["source"]["nixFile"]["path"]
    assert statement["predicate"]["runDetails"]["builder"]["id"].startswith("https://layerforge.dev/builder/")
    text = payload.decode()
    for unstable in (str(tmp_path), os.uname().nodename, "startedOn", "invocationId", "revision"):
        assert unstable not in text, unstable


def test_attestations_are_reproducible_and_the_staged_commands_give_the_same(tmp_path: Path) -> None:
    """Two builds from two working directories, one naming the Nix file by a relative and one by
    an absolute path under it, and the staged commands told the same source (what Pants runs),
    give the same index.json and so the same artifacts, byte for byte; the Nix file is recorded
    relative to the working directory."""
    work = tmp_path / "work"
    shutil.copytree(FIXTURES, work / "nix")
    common = ["-A", "app", "--sbom", "--provenance-target", "//nix:app", "--no-cache"]
    nix_image("--nix-file", "nix/images.nix", *common, "--out", tmp_path / "one", cwd=work)
    nix_image("--nix-file", work / "nix" / "images.nix", *common, "--out", tmp_path / "two", cwd=work)
    one, two = ((tmp_path / d / "index.json").read_bytes() for d in ("one", "two"))
    assert one == two
    _, payload = statement_of(tmp_path / "one")
    source = json.loads(payload)["predicate"]["buildDefinition"]["externalParameters"]["source"]
    assert source["nixFile"]["path"] == "nix/images.nix"
    for artifact_type, (_, content) in artifacts(tmp_path / "one").items():
        assert artifacts(tmp_path / "two")[artifact_type][1] == content
    # nix-plan from the evaluated derivation, nix-layer, nix-assemble told the source
    drv = subprocess.run(["nix-instantiate", "nix/images.nix", "-A", "app"], capture_output=True, text=True,
                         env=nix_env(), cwd=work, check=True).stdout.strip()  # fmt: skip
    run_cli("nix-plan", "--derivation", drv, "--sbom", "--out", tmp_path / "plan.json", env=os.environ.copy())
    plan = json.loads((tmp_path / "plan.json").read_bytes())
    dirs = []
    for i, job in enumerate(plan["jobs"]):
        sandbox = tmp_path / f"job{i}"
        sandbox.mkdir()
        run_cli(*job["argv"], cwd=sandbox)
        dirs += [sandbox / o for o in job["outs"]]
    layer_args = [a for d in dirs for a in ("--layer-dir", d)]
    run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *layer_args, "--out", tmp_path / "staged",
            "--provenance-target=//nix:app", "--provenance-nix-file=nix/images.nix", "--provenance-attr=app",
            cwd=work)  # fmt: skip
    assert (tmp_path / "staged" / "index.json").read_bytes() == one
    bad = run_cli("nix-assemble", "--plan", tmp_path / "plan.json", *layer_args, "--out", tmp_path / "x",
                  "--provenance-attr=app", check=False, cwd=work)  # fmt: skip
    assert bad.returncode == 2 and "--provenance-attr" in bad.stderr and "--provenance-nix-file" in bad.stderr


def test_flake_provenance_records_the_lock_file(tmp_path: Path) -> None:
    """A local flake is recorded relative to the working directory, with its flake.nix and the
    flake.lock that pins its input (a `path:` flake beside it, as test_nix_sources locks one)."""
    work = tmp_path / "work"
    shutil.copytree(FLAKE, work / "flake")
    (work / "lib").mkdir()
    (work / "lib" / "flake.nix").write_text('{ outputs = { self }: { word = "locked word"; }; }\n')
    text = (work / "flake" / "flake.nix").read_text()
    (work / "flake" / "flake.nix").write_text(
        text.replace(
            "{\n  outputs = { self }:",
            f'{{\n  inputs.words.url = "path:{work / "lib"}";\n  outputs = {{ self, words }}:',
        ).replace("builtins.readFile ./greeting.txt", "words.word")
    )
    lock = subprocess.run(["nix", "--extra-experimental-features", "nix-command flakes", "flake", "lock",
                           f"path:{work / 'flake'}"], capture_output=True, text=True, env=nix_env(), timeout=120,
                          check=False)  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    nix_image("--flake", "./flake#app", "--copy-to-root-attr", "./flake#tools", "--sbom", "--out", tmp_path / "img",
              cwd=work)  # fmt: skip
    statement = json.loads(statement_of(tmp_path / "img")[1])
    definition = statement["predicate"]["buildDefinition"]
    source = definition["externalParameters"]["source"]
    assert source["flake"] == "path:flake#app"
    assert source["copyToRootAttrs"] == ["path:flake#tools"]
    sha = {name: run("sha256sum", work / "flake" / name).stdout.split()[0] for name in ("flake.nix", "flake.lock")}
    assert source["flakeFiles"] == [{"path": f"flake/{n}", "sha256": sha[n]} for n in ("flake.nix", "flake.lock")]
    files = [d for d in definition["resolvedDependencies"] if "uri" not in d]
    assert [(d["name"], d["digest"]["sha256"], d["annotations"]["role"]) for d in files] == [
        (f"flake/{n}", sha[n], "flake") for n in ("flake.nix", "flake.lock")
    ]


def test_flake_references_are_recorded_the_same_however_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Pants hands nix-assemble (`path:./DIR#ATTR` from the build root) and what a user
    types (`./DIR#ATTR`, `./DIR/#ATTR`, an absolute path under the working directory) are one
    record."""
    shutil.copytree(FLAKE, tmp_path / "flake")
    monkeypatch.chdir(tmp_path)
    spellings = [
        ("path:./flake#app", ["path:./flake#tools"]),
        ("./flake#app", ["./flake/#tools", "./flake#tools"]),
        (f"{tmp_path}/flake#app", [f"path:{tmp_path}/flake#tools"]),
    ]
    recorded = {NixSource.of(nix_file=None, flake=f, copy_to_root_attrs=a) for f, a in spellings}
    (one,) = recorded
    assert one is not None and one.flake == "path:flake#app" and one.copy_to_root_attrs == ("path:flake#tools",)
    assert [f.path for f in one.flake_files] == ["flake/flake.nix"]


def test_provenance_target_needs_sbom_and_images_without_sbom_have_no_referrers(tmp_path: Path) -> None:
    bad = nix_image("--store-path", build("app"), "--provenance-target", "a:b", "--out", tmp_path / "x", check=False)
    assert bad.returncode == 2 and "--provenance-target" in bad.stderr and "--sbom" in bad.stderr
    nix_image("--store-path", build("app"), "--out", tmp_path / "plain")
    assert artifacts(tmp_path / "plain") == {}


def test_the_base_image_is_a_resolved_dependency() -> None:
    """A plan on a base image (no Nix needed: the statement is made from the plan alone)."""
    path = "/nix/store/" + "a" * 32 + "-app-1.0"
    closure = Closure(roots=(path,), infos={path: PathInfo(path, "sha256:" + "1" * 64, 100, (), None)})
    base = BaseInfo("sha256:" + "b" * 64, "base:1", 2)
    plan = NixPlan(ref="1.0", arch="amd64", epoch=7, closure=closure, layers=(), sbom=True, base=base)
    statement = provenance_statement(plan, "sha256:" + "c" * 64, BuildInputs())
    jsonschema.Draft7Validator(STATEMENT_SCHEMA).validate(statement)
    resolved = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert resolved == [
        {"name": "base:1", "digest": {"sha256": "b" * 64}, "annotations": {"role": "base-image", "layers": 2}},
        {"uri": f"nix:{path}", "digest": {"sha256": "1" * 64}, "annotations": {"narSize": 100}},
    ]
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external == {"options": {**external["options"]}} and external["options"]["base"]["digest"] == base.digest
    assert statement["subject"] == [{"name": "1.0", "digest": {"sha256": "c" * 64}}]
