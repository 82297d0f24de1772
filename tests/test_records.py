"""Build and publish records (docs/records.md): validated against their JSON schemas with
jsonschema, and checked against independent readers: the layout itself, skopeo (the digest
the registry serves for each tag), and the registry's own answers. ``push --dry-run`` asks
the registry with HEAD requests only and sends nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import index_entry, read_json_blob, run, run_cli
from tests.nix_support import build, closure, nix_image
from tests.push_support import attach_sbom, isolate, multi_layer_image, push
from tests.registry_support import FaultProxy, Registry

SCHEMAS = Path(__file__).resolve().parent.parent / "python" / "layerforge" / "record" / "schema"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def validate(record: Any, schema: str) -> None:
    doc = json.loads((SCHEMAS / schema).read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    errors = sorted(jsonschema.Draft202012Validator(doc).iter_errors(record), key=str)
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def record_of(target: str, out: Path, *args: str) -> dict[str, Any]:
    run_cli("record", target, "--out", out, *args)
    record = json.loads(out.read_text())
    validate(record, "build-record.v1.json")
    return dict(record)


def served_digest(host: str, reference: str) -> str:
    """The digest of the manifest the registry serves for ``reference``, as skopeo reads it."""
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{reference}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def test_build_record_of_a_dir_image_names_layers_files_and_sbom(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "motd").write_text("hi\n")
    (tree / "bin").mkdir()
    (tree / "bin" / "tool").write_text("#!/bin/sh\n")
    layout = tmp_path / "layout"
    run_cli("dir-image", tree, "--out", layout, "--tag", "v1", "--image-name", "team/app:v1")
    sbom = attach_sbom(layout)
    record = record_of(f"{layout}:v1", tmp_path / "r.json", "--repository", "team/app", "--tag", "v1")

    entry = index_entry(layout, "v1")
    manifest = read_json_blob(layout, entry["digest"])
    config = read_json_blob(layout, manifest["config"]["digest"])
    assert record["digest"] == entry["digest"] and record["imageName"] == "team/app:v1"
    assert record["repository"] == "team/app" and record["tags"] == ["v1"] and record["index"] is None
    (image,) = record["images"]
    assert image["platform"] == {"architecture": config["architecture"], "os": "linux"}
    assert [layer["digest"] for layer in image["layers"]] == [layer["digest"] for layer in manifest["layers"]]
    assert [layer["diffId"] for layer in image["layers"]] == config["rootfs"]["diff_ids"]
    assert set(image["layers"][0]["files"]) >= {"/etc", "/etc/motd", "/bin/tool"}
    assert image["layers"][0]["storePaths"] == []
    assert [r["digest"] for r in image["referrers"]] == [sbom.digest] == [r["digest"] for r in record["referrers"]]


def test_build_record_of_a_nix_image_lists_each_layers_store_paths(tmp_path: Path, nix_cli_env: None) -> None:
    app = build("app")
    layout = tmp_path / "layout"
    nix_image("--store-path", app, "--out", layout, "--max-layers", "3")
    record = record_of(str(layout), tmp_path / "r.json")
    held = [p for layer in record["images"][0]["layers"] for p in layer["storePaths"]]
    assert sorted(held) == sorted(closure(app)), "every store path of the closure, each in one layer"
    assert not any(f.startswith("/nix/store/") for layer in record["images"][0]["layers"] for f in layer["files"])


def test_a_record_takes_each_layers_contents_from_its_layer_directory(tmp_path: Path, nix_cli_env: None) -> None:
    """What Pants runs: nix-layer writes what each layer holds beside its layer.json
    (contents.json, the native command for store-path layers, Python for the root layer), and
    the record of the layout assembled without the layer blobs, given the layer directories,
    is byte for byte the record that reads every blob of the whole layout."""
    app, busybox = build("app"), build("busyboxPkg")
    plan = tmp_path / "plan.json"
    run_cli("nix-plan", "--store-path", app, "--copy-to-root", busybox, "--max-layers", "3", "--out", plan,
            env=os.environ.copy())  # fmt: skip
    dirs: list[Path] = []
    for i, job in enumerate(json.loads(plan.read_bytes())["jobs"]):
        (tmp_path / f"job{i}").mkdir()
        run_cli(*job["argv"], cwd=tmp_path / f"job{i}")
        dirs += [tmp_path / f"job{i}" / out for out in job["outs"]]
    assert len(dirs) == 3 and all((d / "contents.json").is_file() for d in dirs)
    layer_args = [a for d in dirs for a in ("--layer-dir", d)]
    run_cli("nix-assemble", "--plan", plan, *layer_args, "--out", tmp_path / "full")
    run_cli("nix-assemble", "--plan", plan, *layer_args, "--out", tmp_path / "bare", "--without-layer-blobs")
    whole = record_of(str(tmp_path / "full"), tmp_path / "whole.json", "--output", "dist/img", "--tag", "v1")
    listed = record_of(str(tmp_path / "bare"), tmp_path / "listed.json", "--output", "dist/img", "--tag", "v1",
                       *layer_args)  # fmt: skip
    assert (tmp_path / "listed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert all(layer["files"] is not None for layer in listed["images"][0]["layers"]) and whole == listed
    # the assembly writes the same record itself (what Pants runs: no record process)
    run_cli("nix-assemble", "--plan", plan, *layer_args, "--out", tmp_path / "own", "--without-layer-blobs",
            "--record", tmp_path / "own.json", "--record-output", "dist/img", "--record-tag", "v1")  # fmt: skip
    assert (tmp_path / "own.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    bare = record_of(str(tmp_path / "bare"), tmp_path / "bare.json", "--output", "dist/img", "--tag", "v1")
    assert all(layer["files"] is None for layer in bare["images"][0]["layers"]), "no blob, no contents"
    (dirs[0] / "contents.json").write_text('{"files": 1}')
    proc = run_cli("record", tmp_path / "bare", "--out", tmp_path / "bad.json", *layer_args, check=False)
    assert proc.returncode == 1 and "does not list a layer's store paths and files" in proc.stderr
    proc = run_cli("nix-assemble", "--plan", plan, *layer_args, "--out", tmp_path / "x", "--without-layer-blobs",
                   "--record", tmp_path / "x.json", check=False)  # fmt: skip
    assert proc.returncode == 1 and "does not list" in proc.stderr and not (tmp_path / "x").exists()


def test_build_record_of_an_index_lists_its_entries(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    for arch in ("amd64", "arm64"):
        run_cli("dir-image", tree, "--out", tmp_path / arch, "--tag", "v1", "--arch", arch)
    run_cli("index", f"{tmp_path / 'amd64'}:v1", f"{tmp_path / 'arm64'}:v1", "--out", tmp_path / "idx", "--tag", "v1")
    record = record_of(f"{tmp_path / 'idx'}:v1", tmp_path / "r.json", "--no-files")
    nested = read_json_blob(tmp_path / "idx", index_entry(tmp_path / "idx", "v1")["digest"])
    assert [e["digest"] for e in record["index"]["entries"]] == [m["digest"] for m in nested["manifests"]]
    assert sorted(i["platform"]["architecture"] for i in record["images"]) == ["amd64", "arm64"]
    assert all(layer["files"] is None for i in record["images"] for layer in i["layers"])


def test_publish_record_names_what_the_registry_serves_and_the_bytes(tmp_path: Path, registry: Registry) -> None:
    layout = multi_layer_image(tmp_path, layers=3, size=100_000)
    record_path = tmp_path / "publish.json"
    built = record_of(f"{layout}:v1", tmp_path / "build.json")
    target = f"{registry.host}/team/app:v1"
    push(f"{layout}:v1", target, "--tag", "v2", "--record", record_path)
    first = json.loads(record_path.read_text())
    validate(first, "publish-record.v1.json")
    (p,) = first["pushes"]
    assert p["digest"] == built["digest"] == served_digest(registry.host, "team/app:v1")
    assert served_digest(registry.host, "team/app:v2") == p["digest"]
    assert p["references"] == [f"{registry.host}/team/app:v1", f"{registry.host}/team/app:v2"]
    sizes = {layer["digest"]: layer["size"] for layer in built["images"][0]["layers"]}
    config = read_json_blob(layout, built["digest"])["config"]
    assert p["bytes"]["pushed"] == sum(sizes.values()) + config["size"] and p["blobs"]["pushed"] == 4
    assert p["bytes"]["skipped"] == 0 and p["tags"] == {"v1": "pushed", "v2": "pushed"}

    # Again, and to a second repository: the same record collects both pushes.
    push(f"{layout}:v1", f"{registry.host}/team/app:v1", "--record", record_path)
    push(f"{layout}:v1", f"{registry.host}/other/app:v1", "--record", record_path)
    second = json.loads(record_path.read_text())
    validate(second, "publish-record.v1.json")
    again, other = second["pushes"]
    assert again["repository"] == "team/app" and again["bytes"]["pushed"] == 0 and again["tags"] == {"v1": "unchanged"}
    assert other["repository"] == "other/app" and other["bytes"]["pushed"] == 0
    assert other["bytes"]["mounted"] == p["bytes"]["pushed"], "the second repository mounts every blob"
    assert served_digest(registry.host, "other/app:v1") == other["digest"] == built["digest"]


def test_a_repush_answered_by_the_native_command_records_it_too(tmp_path: Path, registry: Registry) -> None:
    """The same push again is answered from its receipt by the native command (HEAD requests
    for the tags only); it still adds its entry, nothing pushed, to the publish record."""
    layout = multi_layer_image(tmp_path, layers=2, size=50_000)
    record_path = tmp_path / "publish.json"
    proxy = FaultProxy(registry.host).start()
    try:
        argv = (f"{layout}:v1", f"{proxy.host}/team/app:v1", f"--record={record_path}")
        push(*argv)
        first = json.loads(record_path.read_text())["pushes"][0]
        assert first["blobs"]["pushed"] == 3
        record_path.write_text("{}")  # whatever is there is replaced by a record
        proxy.reset_counts()
        again = push(*argv)
        assert set(proxy.requests) == {"HEAD app/manifests"}, proxy.requests
        assert f"{proxy.host}/team/app:v1 {first['digest']} (unchanged)" in again.stdout
        record = json.loads(record_path.read_text())
        validate(record, "publish-record.v1.json")
        (entry,) = record["pushes"]
        assert entry["digest"] == first["digest"] and entry["tags"] == {"v1": "unchanged"}
        assert entry["bytes"]["pushed"] == 0 and entry["bytes"]["skipped"] == first["bytes"]["pushed"]
        assert entry["blobs"]["skipped"] == 3 and entry["manifestsWritten"] == 0
    finally:
        proxy.stop()


def test_dry_run_asks_with_head_only_and_sends_nothing(tmp_path: Path, registry: Registry) -> None:
    layout = multi_layer_image(tmp_path, layers=2, size=50_000)
    proxy = FaultProxy(registry.host).start()
    try:
        target = f"{proxy.host}/team/dry:v1"
        before = run_cli("push", "--dry-run", "--json", f"{layout}:v1", target)
        assert {k.split()[0] for k in proxy.requests} <= {"HEAD", "GET"}, proxy.log
        assert all(line.startswith(("HEAD ", "GET /v2/ ")) or line == "GET /v2/" for line in proxy.log), proxy.log
        assert sum(line.startswith("HEAD /v2/team/dry/blobs/") for line in proxy.log) == 3, proxy.log
        assert not registry.manifest_exists("team/dry", "v1"), "a dry run tags nothing"
        plan = json.loads(before.stdout)
        assert {b["action"] for b in plan["blobs"]} == {"push"} and len(plan["blobs"]) == 3
        assert plan["tags"] == [{"reference": target, "action": "tag", "current": None}]

        push(f"{layout}:v1", target)
        proxy.reset_counts()
        proxy.log.clear()
        after = json.loads(run_cli("push", "--dry-run", "--json", f"{layout}:v1", target, "--tag", "v2").stdout)
        assert all(line.startswith(("HEAD ", "GET /v2/")) for line in proxy.log), proxy.log
        assert any(line.startswith("HEAD /v2/team/dry/manifests/v2") for line in proxy.log), proxy.log
        assert {b["action"] for b in after["blobs"]} == {"present"}
        assert [(t["action"], t["current"]) for t in after["tags"]] == [("unchanged", plan["digest"]), ("tag", None)]
        text = run_cli("push", "--dry-run", f"{layout}:v1", target, "--tag", "v2").stdout
        assert "dry run: would push 0 blobs" in text and "1 tags to set; nothing was sent" in text
        assert not registry.manifest_exists("team/dry", "v2")
    finally:
        proxy.stop()
