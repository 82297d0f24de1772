"""The `layerforge` command line: outputs, docker-archive export, and failure behaviour."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from layerforge.cli.main import COMMANDS
from tests.helpers import assert_one_line_error, image_parts, layerforge_bin, run, run_cli, snapshot, verify_blobs
from tests.test_layer_tar import expected_snapshot


@pytest.fixture
def layout(sample_tree: Path, tmp_path: Path) -> Path:
    out = tmp_path / "layout"
    run_cli(
        "dir-image",
        sample_tree,
        "--out",
        out,
        "--tag",
        "example.com/team/app:1.0",
        "--entrypoint",
        "/bin/tool",
    )
    return out


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_on_every_command(command: list[str]) -> None:
    out = run_cli(*command, "--help").stdout
    assert f"usage: layerforge {' '.join(command)}".strip() in out


def test_inspect_text_and_json_agree_with_skopeo(layout: Path) -> None:
    ref = "example.com/team/app:1.0"
    text = run_cli("inspect", f"{layout}:{ref}").stdout
    info = json.loads(run_cli("inspect", f"{layout}:{ref}", "--json").stdout)
    skopeo = json.loads(run("skopeo", "inspect", f"oci:{layout}:{ref}").stdout)
    assert info["digest"] == skopeo["Digest"]
    assert [layer["digest"] for layer in info["layers"]] == skopeo["Layers"]
    assert info["config"]["config"]["Entrypoint"] == ["/bin/tool"]
    assert info["layers"][0]["diffId"].startswith("sha256:")
    assert info["reference"] == ref
    assert skopeo["Digest"] in text and 'Entrypoint: ["/bin/tool"]' in text and "linux/amd64" in text
    # a single-image layout needs no REF
    assert json.loads(run_cli("inspect", layout, "--json").stdout)["digest"] == info["digest"]


def test_export_docker_archive_is_read_by_skopeo(layout: Path, sample_tree: Path, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    out = run_cli("export-docker", layout, "--out", archive).stdout
    assert "example.com/team/app:1.0" in out
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        names = tar.getnames()
    assert manifest[0]["RepoTags"] == ["example.com/team/app:1.0"]
    assert all(n in names for n in manifest[0]["Layers"])
    _, _, config = image_parts(layout, "example.com/team/app:1.0")
    docker_cfg = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}").stdout)
    assert docker_cfg["rootfs"]["diff_ids"] == config["rootfs"]["diff_ids"]
    # Round trip: docker-archive -> OCI layout (skopeo) -> rootfs (umoci) equals the source tree.
    back = tmp_path / "back"
    run("skopeo", "copy", f"docker-archive:{archive}", f"oci:{back}:rt")
    run("umoci", "unpack", "--image", f"{back}:rt", tmp_path / "bundle")
    assert snapshot(tmp_path / "bundle" / "rootfs") == expected_snapshot(sample_tree)


def test_export_docker_is_reproducible_and_takes_tags(layout: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    run_cli("export-docker", layout, "--out", a, "--tag", "app:dev", "--tag", "registry.local:5000/x/app:2")
    run_cli("export-docker", layout, "--out", b, "--tag", "app:dev", "--tag", "registry.local:5000/x/app:2")
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        repos = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["app:dev", "registry.local:5000/x/app:2"]
    assert set(repos) == {"app", "registry.local:5000/x/app"}
    assert not list(tmp_path.glob(".layerforge-export-*"))


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--env", "NOVALUE"], ["--env", "'NOVALUE'", "KEY=VALUE"]),
        (["--label", "=x"], ["--label"]),
        (["--arch", "vax"], ["--arch", "vax"]),
        (["--compression", "lzma"], ["--compression", "lzma"]),
        (["--tag", "bad tag!"], ["--tag", "bad tag!"]),
        (["--workdir", "relative"], ["--workdir", "absolute"]),
        (["--expose", "http"], ["--expose"]),
        (["--level", "12"], ["level"]),
        (["--entrypoint", "[1, 2]"], ["--entrypoint", "JSON array"]),
    ],
)
def test_bad_options_name_the_option_and_write_nothing(
    sample_tree: Path, tmp_path: Path, extra: list[str], needles: list[str]
) -> None:
    out = tmp_path / "never"
    proc = run_cli("dir-image", sample_tree, "--out", out, *extra, check=False)
    assert_one_line_error(proc, *needles)
    assert not out.exists()


NIX_STORE_PATH = "/nix/store/" + "a" * 32 + "-app"


@pytest.mark.parametrize("group", ["--out", "--out=OUTSIDE", f"{NIX_STORE_PATH},--out,OUTSIDE", "OUTSIDE"])
def test_layer_group_values_are_store_paths_never_options(tmp_path: Path, group: str) -> None:
    """The argv Pants gives nix-plan: a group as one --layer-group=P,P argument, so a value that
    looks like an option is read as a store path of the group, and refused as one."""
    outside = tmp_path / "outside"
    outside.mkdir()
    plan = tmp_path / "plan.json"
    value = group.replace("OUTSIDE", str(outside / "plan.json"))
    proc = run_cli("nix-plan", f"--out={plan}", f"--store-path={NIX_STORE_PATH}", f"--layer-group={value}", check=False)
    bad = next(p for p in value.split(",") if p != NIX_STORE_PATH)
    assert_one_line_error(proc, "nix-plan: error: --layer-group: ", f"{bad!r} is not a Nix store path")
    assert not plan.exists() and not any(outside.iterdir())


def test_missing_and_non_directory_rootfs(tmp_path: Path) -> None:
    proc = run_cli("dir-image", tmp_path / "nope", "--out", tmp_path / "o", check=False)
    assert_one_line_error(proc, "ROOTFS_DIR", "does not exist")
    f = tmp_path / "file"
    f.write_text("x")
    proc = run_cli("dir-image", f, "--out", tmp_path / "o", check=False)
    assert_one_line_error(proc, "ROOTFS_DIR", "not a directory")
    assert not (tmp_path / "o").exists()


def test_socket_in_tree_fails_and_existing_layout_is_untouched(layout: Path, sample_tree: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sample_tree / "agent.sock"))
    try:
        proc = run_cli("dir-image", sample_tree, "--out", layout, "--tag", "new", check=False)
    finally:
        sock.close()
    assert_one_line_error(proc, "socket", "agent.sock")
    after = {p: p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    assert after == before


def test_unreadable_file_fails_cleanly(sample_tree: Path, tmp_path: Path) -> None:
    # Root reads everything; without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH it cannot read a
    # 0600 file owned by someone else, exactly like a normal user.
    private = sample_tree / "etc" / "private"
    os.chown(private, 4321, 4321)
    private.chmod(0o600)
    out = tmp_path / "o"
    drop = "-dac_override,-dac_read_search"
    proc = subprocess.run(
        ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", layerforge_bin(),
         "dir-image", str(sample_tree), "--out", str(out)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, "cannot read", "etc/private", "Permission denied")
    assert proc.returncode == 1
    assert not out.exists()


def test_out_that_is_not_a_layout_is_refused(sample_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "occupied"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    proc = run_cli("dir-image", sample_tree, "--out", out, check=False)
    assert_one_line_error(proc, "not an OCI image layout")
    assert [p.name for p in out.iterdir()] == ["precious.txt"]


def test_inspect_errors(layout: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("inspect", f"{layout}:nope", check=False), "no reference 'nope'")
    assert_one_line_error(run_cli("inspect", tmp_path / "void", check=False), "does not exist")
    (tmp_path / "plain").mkdir()
    assert_one_line_error(run_cli("inspect", tmp_path / "plain", check=False), "not an OCI image layout")


def test_corrupt_blob_is_detected_on_export(layout: Path, tmp_path: Path) -> None:
    _, manifest, _ = image_parts(layout, "example.com/team/app:1.0")
    blob = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x55
    blob.write_bytes(bytes(data))
    proc = run_cli("export-docker", layout, "--out", tmp_path / "x.tar", check=False)
    assert proc.returncode == 1
    assert not (tmp_path / "x.tar").exists()
    assert not list(tmp_path.glob(".layerforge-export-*"))


@pytest.fixture
def plain_layout(sample_tree: Path, tmp_path: Path) -> Path:
    """An image whose layer is an uncompressed tar: exported straight from the blob."""
    out = tmp_path / "plain-layout"
    run_cli("dir-image", sample_tree, "--out", out, "--tag", "app:1.0", "--compression", "none")
    return out


def test_uncompressed_layer_export_matches_the_gzip_one(plain_layout: Path, layout: Path, tmp_path: Path) -> None:
    run_cli("export-docker", f"{plain_layout}:app:1.0", "--out", tmp_path / "plain.tar")
    run_cli("export-docker", f"{layout}:example.com/team/app:1.0", "--out", tmp_path / "gz.tar", "--tag", "app:1.0")
    with tarfile.open(tmp_path / "plain.tar") as a, tarfile.open(tmp_path / "gz.tar") as b:
        names = [m.name for m in a.getmembers() if m.name.endswith("/layer.tar")]
        assert names == [m.name for m in b.getmembers() if m.name.endswith("/layer.tar")]
        fa, fb = a.extractfile(names[0]), b.extractfile(names[0])
        assert fa is not None and fb is not None
        assert fa.read() == fb.read()


@pytest.mark.parametrize(("offset", "message"), [(100, "not a valid tar"), (None, "does not match its digest")])
def test_corrupt_uncompressed_blob_is_detected_while_streamed(
    plain_layout: Path, tmp_path: Path, offset: int | None, message: str
) -> None:
    """A damaged header fails the tar check; damaged file data (offset None) fails the
    digest, which is checked while the layer is copied into the archive."""
    _, manifest, _ = image_parts(plain_layout, "app:1.0")
    blob = plain_layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    if offset is None:
        with tarfile.open(blob) as tar:
            offset = next(m.offset_data for m in tar.getmembers() if m.isfile() and m.size > 0)
    data = bytearray(blob.read_bytes())
    data[offset] ^= 0x55
    blob.write_bytes(bytes(data))
    proc = run_cli("export-docker", plain_layout, "--out", tmp_path / "x.tar", check=False)
    assert_one_line_error(proc, message)
    assert proc.returncode == 1
    assert not (tmp_path / "x.tar").exists()
    assert not list(tmp_path.glob(".layerforge-export-*"))


def test_layout_stays_consistent(layout: Path) -> None:
    assert verify_blobs(layout) == 3
    assert not (layout / ".layerforge-tmp").exists()
