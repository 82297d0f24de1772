"""OCI layouts written by `layerforge dir-image`, judged by skopeo, umoci and image-spec's schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import (
    image_parts,
    run,
    run_cli,
    snapshot,
    validate_schema,
    verify_blobs,
)
from tests.test_layer_tar import expected_snapshot


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_skopeo_and_umoci_accept_and_unpack_the_source_tree(
    sample_tree: Path, tmp_path: Path, compression: str
) -> None:
    layout = tmp_path / "layout"
    out = run_cli("dir-image", sample_tree, "--out", layout, "--compression", compression, "--tag", "v1")
    digest = out.stdout.split()[-1]
    inspected = json.loads(run("skopeo", "inspect", f"oci:{layout}:v1").stdout)
    assert inspected["Digest"] == digest
    assert inspected["Architecture"] == "amd64" and inspected["Os"] == "linux"
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:v1").stdout)
    assert raw["layers"][0]["mediaType"].endswith({"gzip": "tar+gzip", "zstd": "tar+zstd", "none": "tar"}[compression])

    unpack_from = layout
    if compression == "zstd":
        # umoci 0.4 cannot read zstd layers: skopeo (Go's zstd decoder) re-encodes them first,
        # keeping the diff_id, which proves it decoded our stream to the same tar.
        unpack_from = tmp_path / "via-skopeo"
        run(
            "skopeo",
            "copy",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
            f"oci:{layout}:v1",
            f"oci:{unpack_from}:v1",
        )
        copied = json.loads(run("skopeo", "inspect", "--config", f"oci:{unpack_from}:v1").stdout)
        ours = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:v1").stdout)
        assert copied["rootfs"]["diff_ids"] == ours["rootfs"]["diff_ids"]
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{unpack_from}:v1", bundle)
    assert snapshot(bundle / "rootfs") == expected_snapshot(sample_tree)
    assert verify_blobs(layout) == 3


def test_documents_validate_against_image_spec_schemas(sample_tree: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    run_cli(
        "dir-image", sample_tree, "--out", layout,
        "--entrypoint", "/bin/tool", "--cmd", "arg1", "arg2",
        "--env", "PATH=/bin", "--env", "LANG=C.UTF-8", "--workdir", "/data", "--user", "1000:1000",
        "--label", "org.example.team=platform", "--expose", "8080", "--expose", "53/udp",
        "--volume", "/data", "--stop-signal", "SIGINT",
        "--source", "https://example.com/repo", "--revision", "abc123",
    )  # fmt: skip
    index = json.loads((layout / "index.json").read_bytes())
    validate_schema(index, "image-index-schema.json")
    validate_schema(json.loads((layout / "oci-layout").read_bytes()), "image-layout-schema.json")
    entry, manifest, config = image_parts(layout)
    validate_schema(manifest, "image-manifest-schema.json")
    validate_schema(config, "config-schema.json")
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "1970-01-01T00:00:01Z",
        "org.opencontainers.image.source": "https://example.com/repo",
        "org.opencontainers.image.revision": "abc123",
    }
    assert config["config"] == {
        "Entrypoint": ["/bin/tool"],
        "Cmd": ["arg1", "arg2"],
        "Env": ["PATH=/bin", "LANG=C.UTF-8"],
        "WorkingDir": "/data",
        "User": "1000:1000",
        "Labels": {"org.example.team": "platform"},
        "ExposedPorts": {"53/udp": {}, "8080/tcp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGINT",
    }
    assert config["rootfs"]["type"] == "layers" and len(config["rootfs"]["diff_ids"]) == 1
    assert config["created"] == "1970-01-01T00:00:01Z"


def test_reproducible_across_runs_and_output_dirs(sample_tree: Path, tmp_path: Path) -> None:
    digests = set()
    for name in ("a", "b", "c/nested"):
        out = run_cli("dir-image", sample_tree, "--out", tmp_path / name, "--tag", "x")
        digests.add(out.stdout.split()[-1])
    assert len(digests) == 1
    blobs = {p.name for p in (tmp_path / "a" / "blobs" / "sha256").iterdir()}
    assert blobs == {p.name for p in (tmp_path / "b" / "blobs" / "sha256").iterdir()}
    assert (tmp_path / "a" / "index.json").read_bytes() == (tmp_path / "b" / "index.json").read_bytes()


def test_source_date_epoch_sets_created_and_mtimes(sample_tree: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000", "PATH": "/usr/bin:/bin"}
    run_cli("dir-image", sample_tree, "--out", tmp_path / "l", env=env)
    _, manifest, config = image_parts(tmp_path / "l")
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{tmp_path / 'l'}:latest", bundle)
    assert int((bundle / "rootfs" / "etc" / "config").stat().st_mtime) == 1700000000


def test_tags_accumulate_and_replace(sample_tree: Path, tmp_path: Path) -> None:
    layout = tmp_path / "l"
    first = run_cli("dir-image", sample_tree, "--out", layout, "--tag", "one").stdout.split()[-1]
    (sample_tree / "new-file").write_text("changed\n")
    second = run_cli("dir-image", sample_tree, "--out", layout, "--tag", "two").stdout.split()[-1]
    third = run_cli("dir-image", sample_tree, "--out", layout, "--tag", "one", "--arch", "arm64").stdout.split()[-1]
    assert len({first, second, third}) == 3
    index = json.loads((layout / "index.json").read_bytes())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert refs == ["one", "two"]
    assert index["manifests"][0]["digest"] == third
    arm = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:one").stdout)
    cfg = json.loads((layout / "blobs" / "sha256" / arm["config"]["digest"].split(":")[1]).read_bytes())
    assert (cfg["architecture"], cfg["variant"]) == ("arm64", "v8")
    verify_blobs(layout)
