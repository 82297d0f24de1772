"""nydus-image: OCI -> Nydus RAFS v6, checked by the upstream tools (nydus-image 2.2.0
check/unpack/inspect/create, fsck.erofs, dump.erofs), umoci, GNU tar and Python's tarfile."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.helpers import (
    blob_path,
    index_entry,
    read_json_blob,
    run,
    run_cli,
    snapshot,
    validate_schema,
    verify_blobs,
)
from tests.nydus_support import (
    BLOB_TYPE,
    MiB,
    blob_dir,
    bootstrap_bytes,
    check,
    convert,
    dump_erofs_inode,
    dump_erofs_ls,
    entry,
    extract_tar,
    family,
    fsck_erofs,
    layered_image,
    make_image,
    nydus_image,
    nydus_manifest,
    rand,
    tar_layer,
    umoci_rootfs,
    unpack_blob,
)

# -- a single layer from a real directory -------------------------------------------------------


def test_dir_image_round_trips_through_the_oracle(sample_tree: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    run_cli("dir-image", sample_tree, "--out", src, "--tag", "app:1", "--keep-setuid")
    out = tmp_path / "nydus"
    result = convert(f"{src}:app:1", out)
    assert result["ref"] == "app:1"

    manifest = nydus_manifest(out, "app:1")
    blobs, ids = blob_dir(out, manifest, tmp_path / "blobs")
    assert len(ids) == 1
    # The layer blob alone: the oracle extracts its inlined bootstrap and checks it against
    # the blob meta, then rebuilds a tar from bootstrap + chunk data.
    per_layer = check(blobs / ids[0], blobs)
    assert per_layer.blobs[0][0] == ids[0]
    layer_tar = unpack_blob(blobs, ids[0], tmp_path / "layer.tar")
    # The merged bootstrap of the image, with the same blob.
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, manifest))
    merged = check(boot, blobs)
    check(boot)
    merged_tar = tmp_path / "merged.tar"
    nydus_image("unpack", "--blob", blobs / ids[0], "--output", merged_tar, boot)

    expected = snapshot(umoci_rootfs(src, "app:1", tmp_path / "bundle"))
    assert snapshot(extract_tar(layer_tar, tmp_path / "x1")) == expected
    assert snapshot(extract_tar(merged_tar, tmp_path / "x2")) == expected
    assert merged.files["/data/big.txt"].size == 200_000 * 24
    assert len(merged.files["/data/big.txt"].chunks) == 5

    # erofs-utils read the same bootstrap.
    fsck_erofs(boot, merged, tmp_path)
    listing = dump_erofs_ls(boot, merged, tmp_path, "/bin")
    assert listing == {".": 2, "..": 2, "alias": 7, "blob-elsewhere": 1, "su": 1, "tool": 1}
    assert verify_blobs(out) == len(list((out / "blobs" / "sha256").iterdir()))


# -- several hand-written layers: whiteouts, hard links, xattrs, devices ------------------------


def chunk_digests(data: bytes, chunk_size: int) -> list[tuple[str, int]]:
    return [
        (hashlib.sha256(data[i : i + chunk_size]).hexdigest(), len(data[i : i + chunk_size]))
        for i in range(0, len(data), chunk_size)
    ]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layers_merge_like_an_overlay(tmp_path: Path, compression: str) -> None:
    src = layered_image(tmp_path, compression)
    out = tmp_path / "nydus"
    # Raw chunks and sha256 ids let the test check every chunk's bytes itself.
    result = convert(f"{src}:v1", out, "--compressor", "none", "--digester", "sha256", "--chunk-size", "0x100000")
    layers = result["layers"]
    assert isinstance(layers, list)
    # The shared 3 MiB file of layer 2 is stored once, in layer 1's blob.
    assert layers[1]["lower_bytes"] == 3 * MiB + 123
    manifest = nydus_manifest(out, "v1")
    blobs, ids = blob_dir(out, manifest, tmp_path / "blobs")
    assert len(ids) == 3
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, manifest))
    report = check(boot, blobs)
    assert [b[0] for b in report.blobs] == ids
    offline = check(boot)
    assert offline.files.keys() == report.files.keys()
    for blob_id in ids:
        check(blobs / blob_id, blobs)

    # umoci here reads gzip layers only: the same layers, gzip'd, give the expected tree.
    gz = src if compression == "gzip" else layered_image(tmp_path, "gzip")
    expected_root = umoci_rootfs(gz, "v1", tmp_path / "bundle")
    expected = snapshot(expected_root)
    seen = {}
    for path, f in offline.files.items():
        if path == "/":
            continue
        rel = path.lstrip("/")
        want = expected["entries"][rel]
        kind = {"hardlink": "file"}.get(f.kind, f.kind)
        if kind in ("dir", "file", "symlink"):
            assert want[0] == kind, path
        if kind == "symlink":
            assert f.link == want[1], path
        if kind == "file":
            data = (expected_root / rel).read_bytes()
            assert f.size == len(data), path
            # Each chunk: its digest is the sha256 of the file's bytes at that place, and the
            # blob holds exactly those bytes at the offset the bootstrap gives.
            assert [(c[0], c[4]) for c in f.chunks] == chunk_digests(data, MiB), path
            for digest, blob_index, offset, csize, _ in f.chunks:
                raw = blob_path(out, "sha256:" + ids[blob_index]).read_bytes()[offset : offset + csize]
                assert hashlib.sha256(raw).hexdigest() == digest, path
        seen[rel] = kind
    assert sorted(seen) == sorted(expected["entries"]), "same paths as the overlay of the layers"
    assert offline.files["/data/shared.bin"].nlink == 2
    assert offline.files["/data/copy.bin"].chunks == offline.files["/data/shared.bin"].chunks
    assert "/etc/old" not in offline.files and "/opaque/lower" not in offline.files
    assert "/data/text" not in offline.files
    assert offline.files["/data/dir-becomes-link"].link == "../etc"

    # erofs-utils: the whole tree, types and device numbers.
    fsck_erofs(boot, report, tmp_path)
    assert dump_erofs_ls(boot, report, tmp_path, "/dev") == {".": 2, "..": 2, "null": 3, "sda": 4}
    assert dump_erofs_ls(boot, report, tmp_path, "/etc") == {".": 2, "..": 2, "passwd": 1, "xattr": 1}
    assert "Xattr size: 28" in dump_erofs_inode(boot, report, tmp_path, "/etc/xattr")
    assert "Access: 0750" in dump_erofs_inode(boot, report, tmp_path, "/etc")

    # Layer 1's blob is self-contained: the oracle's unpack rebuilds its tar, xattrs included.
    layer1 = unpack_blob(blobs, ids[0], tmp_path / "l1.tar")
    with tarfile.open(layer1) as t:
        members = {m.name.lstrip("/"): m for m in t.getmembers()}
        assert members["etc/xattr"].pax_headers.get("SCHILY.xattr.user.color") == "blue"
        assert (members["dev/null"].devmajor, members["dev/null"].devminor) == (1, 3)
        assert members["bin/sh"].mode == 0o4755
        assert members["opaque/lower"].uid == 1000
        (regular,) = [members[n] for n in ("data/shared.bin", "data/link.bin") if members[n].isfile()]
        shared_member = t.extractfile(regular)
        assert shared_member is not None
        assert shared_member.read() == (expected_root / "data/copy.bin").read_bytes()


def test_packaging_matches_nydusify(tmp_path: Path) -> None:
    src = layered_image(tmp_path)
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out, "--tag", "nydus", "--merge-platform")
    entry_ = index_entry(out, "nydus")
    index = read_json_blob(out, entry_["digest"])
    validate_schema(index, "image-index-schema.json")
    original, nydus = index["manifests"]
    assert original["digest"] == index_entry(src, "v1")["digest"]
    assert "os.features" not in original["platform"]
    assert nydus["platform"]["os.features"] == ["nydus.remoteimage.v1"]
    assert nydus["artifactType"] == "application/vnd.nydus.image.manifest.v1+json"
    manifest = read_json_blob(out, nydus["digest"])
    validate_schema(manifest, "image-manifest-schema.json")
    *blob_layers, boot = manifest["layers"]
    assert all(b["mediaType"] == BLOB_TYPE for b in blob_layers)
    assert all(b["annotations"] == {"containerd.io/snapshot/nydus-blob": "true"} for b in blob_layers)
    assert boot["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert boot["annotations"] == {
        "containerd.io/snapshot/nydus-bootstrap": "true",
        "containerd.io/snapshot/nydus-fs-version": "6",
    }
    config = read_json_blob(out, manifest["config"]["digest"])
    validate_schema(config, "config-schema.json")
    boot_tar = gzip.decompress(blob_path(out, boot["digest"]).read_bytes())
    assert config["rootfs"]["diff_ids"] == [b["digest"] for b in blob_layers] + [
        "sha256:" + hashlib.sha256(boot_tar).hexdigest()
    ]
    assert config["history"][-1]["comment"] == "Nydus Bootstrap Layer"
    (tmp_path / "boot.tar").write_bytes(boot_tar)
    names = run("tar", "--numeric-owner", "-tvf", tmp_path / "boot.tar").stdout.split("\n")
    assert names[0].startswith("dr-xr-xr-x") or names[0].startswith("drwxr-xr-x"), names
    assert (
        names[0].split()[-1] == "image/" and names[1].startswith("-r--r--r--") and names[1].endswith("image/image.boot")
    )
    # The original image is complete in the output layout, so both manifests can be pulled.
    run("skopeo", "inspect", "--raw", f"oci:{out}:nydus")
    assert verify_blobs(out) > 0
    # Prefetch table: the default is the whole image ("/"), as nydusify sets it.
    boot_file = tmp_path / "image.boot"
    boot_file.write_bytes(bootstrap_bytes(out, manifest))
    prefetch = json.loads(nydus_image("inspect", "-R", "prefetch", boot_file).stdout.strip().splitlines()[-1])
    assert prefetch == [{"inode": 128, "path": ["/"]}]


def test_prefetch_patterns(tmp_path: Path) -> None:
    src = layered_image(tmp_path)
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out, "--prefetch", "/etc", "/data/shared.bin", "/etc/passwd")
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, nydus_manifest(out, "v1")))
    prefetch = json.loads(nydus_image("inspect", "-R", "prefetch", boot).stdout.strip().splitlines()[-1])
    paths = {p.rstrip("/") for e in prefetch for p in e["path"]}
    assert "/etc" in paths and ("/data/shared.bin" in paths or "/data/link.bin" in paths)
    assert len(prefetch) == 2, "a pattern below another one is covered by it"
    bad = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "bad", "--prefetch", "/nope", check=False)
    assert bad.returncode == 1 and "--prefetch: '/nope' is not in the image" in bad.stderr
    assert not (tmp_path / "bad").exists()
    for pattern, message in (("etc", "is not an absolute path"), ("/etc/../data", "contains '..'")):
        bad = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "bad", "--prefetch", pattern, check=False)
        assert bad.returncode == 2 and f"--prefetch: '{pattern}' {message}" in bad.stderr, bad.stderr
        assert not (tmp_path / "bad").exists()


# -- against the reference builder ---------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", ["0x100000", "0x10000"])
def test_same_tree_and_chunks_as_nydus_image_create(sample_tree: Path, tmp_path: Path, chunk_size: str) -> None:
    src = tmp_path / "src"
    run_cli("dir-image", sample_tree, "--out", src, "--tag", "t", "--compression", "none", "--keep-setuid")
    manifest = read_json_blob(src, index_entry(src, "t")["digest"])
    layer_tar = blob_path(src, manifest["layers"][0]["digest"])
    # Upstream, the way nydus-snapshotter packs a layer.
    ref_blob = tmp_path / "ref.blob"
    proc = nydus_image(
        "create", "--log-level", "warn", "--whiteout-spec", "none", "--fs-version", "6", "--type", "tar-rafs",
        "--blob-inline-meta", "--features", "blob-toc", "--chunk-size", chunk_size, "--blob", ref_blob, layer_tar,
    )  # fmt: skip
    assert proc.returncode == 0
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref_id = hashlib.sha256(ref_blob.read_bytes()).hexdigest()
    shutil.copy(ref_blob, ref_dir / ref_id)
    theirs = check(ref_dir / ref_id, ref_dir)

    out = tmp_path / "nydus"
    convert(f"{src}:t", out, "--chunk-size", chunk_size)
    ours_dir, (our_id,) = blob_dir(out, nydus_manifest(out, "t"), tmp_path / "ours")
    ours = check(ours_dir / our_id, ours_dir)

    assert ours.files.keys() == theirs.files.keys()
    for path, f in theirs.files.items():
        o = ours.files[path]
        assert (o.kind, o.size, o.nlink, o.link, len(o.chunks)) == (f.kind, f.size, f.nlink, f.link, len(f.chunks))
    (_, their_data, their_chunks) = theirs.blobs[0]
    (_, our_data, our_chunks) = ours.blobs[0]
    assert our_chunks == their_chunks
    print(f"chunk size {chunk_size}: compressed data ours {our_data} vs nydus-image {their_data}")
    assert abs(our_data - their_data) <= 0.02 * their_data
    ref_tar = unpack_blob(ref_dir, ref_id, tmp_path / "ref.tar")
    our_tar = unpack_blob(ours_dir, our_id, tmp_path / "our.tar")
    assert snapshot(extract_tar(ref_tar, tmp_path / "a")) == snapshot(extract_tar(our_tar, tmp_path / "b"))


def test_reference_merge_accepts_our_layer_bootstraps(tmp_path: Path) -> None:
    """`nydus-image merge` of our per-layer bootstraps gives the tree our merged bootstrap has."""
    src = layered_image(tmp_path)
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out, "--digester", "sha256")
    manifest = nydus_manifest(out, "v1")
    blobs, ids = blob_dir(out, manifest, tmp_path / "blobs")
    boots = []
    for blob_id in ids:
        check(blobs / blob_id, blobs)  # leaves <id>.image.boot, extracted by the oracle
        boots.append(blobs / f"{blob_id}.image.boot")
    # Layer 2 references layer 1's blob for the shared file: give merge the lower layers'
    # bootstrap as a chunk dict, as it needs for blobs that are not the layer's own.
    merged_ref = tmp_path / "ref.boot"
    nydus_image("merge", "--bootstrap", merged_ref, "--chunk-dict", f"bootstrap={boots[0]}", *boots)
    ours = tmp_path / "ours.boot"
    ours.write_bytes(bootstrap_bytes(out, manifest))
    theirs = check(merged_ref)
    mine = check(ours)
    # Upstream keeps the bottom layer's whiteout files; everything else must be the same.
    expected = {p: (f.kind, f.size, f.link, f.chunks) for p, f in theirs.files.items() if "/.wh." not in p}
    assert {p: (f.kind, f.size, f.link, f.chunks) for p, f in mine.files.items()} == expected


# -- determinism, chunk dictionary ---------------------------------------------------------------


def test_output_is_reproducible(tmp_path: Path) -> None:
    src = layered_image(tmp_path)
    a = convert(f"{src}:v1", tmp_path / "a", "--threads", "1")
    b = convert(f"{src}:v1", tmp_path / "b", "--threads", "4")
    assert a["digest"] == b["digest"] and a["blobs"] == b["blobs"] and a["bootstrap"] == b["bootstrap"]
    names_a = sorted(p.name for p in (tmp_path / "a" / "blobs" / "sha256").iterdir())
    names_b = sorted(p.name for p in (tmp_path / "b" / "blobs" / "sha256").iterdir())
    assert names_a == names_b
    assert (tmp_path / "a" / "index.json").read_bytes() == (tmp_path / "b" / "index.json").read_bytes()


def test_chunk_dict_reuses_another_images_chunks(tmp_path: Path) -> None:
    one = family(tmp_path, "one", 2 * MiB)
    two = family(tmp_path, "two", 2 * MiB)
    dict_out = tmp_path / "dict"
    convert(f"{one}:v1", dict_out)
    alone = convert(f"{two}:v1", tmp_path / "alone")
    out = tmp_path / "two-nydus"
    result = convert(f"{two}:v1", out, "--chunk-dict", f"{dict_out}:v1")
    assert isinstance(alone["new_blob_bytes"], int) and isinstance(result["new_blob_bytes"], int)
    saved = 1 - result["new_blob_bytes"] / alone["new_blob_bytes"]
    assert saved >= 0.8, (result["new_blob_bytes"], alone["new_blob_bytes"])
    assert isinstance(result["dict_saved_bytes"], int) and result["dict_saved_bytes"] >= 12 * MiB
    manifest = nydus_manifest(out, "v1")
    dict_manifest = nydus_manifest(dict_out, "v1")
    # The dictionary's blob is a layer of the new image and is present in its layout.
    assert dict_manifest["layers"][0]["digest"] in [layer["digest"] for layer in manifest["layers"]]
    assert verify_blobs(out) > 0
    blobs, _ = blob_dir(out, manifest, tmp_path / "blobs")
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, manifest))
    report = check(boot, blobs)
    assert len(report.blobs) == 2
    fsck_erofs(boot, report, tmp_path)
    # A bare bootstrap works too (blobs beside it, named by id).
    bare = tmp_path / "bare"
    bare_blobs, _ = blob_dir(dict_out, dict_manifest, bare)
    (bare / "dict.boot").write_bytes(bootstrap_bytes(dict_out, dict_manifest))
    again = convert(f"{two}:v1", tmp_path / "two-bare", "--chunk-dict", str(bare / "dict.boot"))
    assert again["digest"] == result["digest"]
    assert bare_blobs == bare


# -- bad input -----------------------------------------------------------------------------------


def _bad_layers() -> dict[str, tuple[list[bytes], str]]:
    ok = tar_layer([(entry("a"), b"a")])
    return {
        "dotdot": ([tar_layer([(entry("../escape"), b"x")])], "'..'"),
        "absolute": ([tar_layer([(entry("/etc/passwd"), b"x")])], "absolute member name"),
        "hardlink": ([tar_layer([(entry("h", "hardlink", link="missing"), None)])], "not earlier in the layer"),
        "symlink-loop": (
            [
                ok,
                tar_layer(
                    [
                        (entry("l1", "symlink", link="l2"), None),
                        (entry("l2", "symlink", link="l1"), None),
                        (entry("l1/file"), b"x"),
                    ]
                ),
            ],
            "symlink in a loop (/l1 -> /l2 -> /l1)",
        ),
        "empty-layer": ([ok, b""], "empty (0 bytes)"),
    }


@pytest.mark.parametrize("case", sorted(_bad_layers()))
def test_bad_layers_fail_cleanly(tmp_path: Path, case: str) -> None:
    layers, message = _bad_layers()[case]
    src = make_image(tmp_path / "src", "v1", layers, "none")
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert message in line and "layer" in line, line
    assert not out.exists(), "no partial output"


def test_corrupt_gzip_layer(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), rand(100_000, 3))])], "gzip")
    manifest = read_json_blob(src, index_entry(src, "v1")["digest"])
    layer = blob_path(src, manifest["layers"][0]["digest"])
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(layer, 0o644)
    layer.write_bytes(bytes(data))
    out = tmp_path / "existing"
    run_cli("dir-image", tmp_path / "src" / "blobs", "--out", out, "--tag", "keep")
    before = sorted(p.name for p in (out / "blobs" / "sha256").iterdir())
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "layer 1 (sha256:" in line and ("gzip" in line or "does not match its digest" in line), line
    assert sorted(p.name for p in (out / "blobs" / "sha256").iterdir()) == before
    assert not (out / ".layerforge-tmp").exists() or not any((out / ".layerforge-tmp").iterdir())


@pytest.mark.parametrize("value", ["3000", "0x3000", "32MiB", "1K"])
def test_chunk_size_must_be_a_power_of_two_in_range(tmp_path: Path, value: str) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a")])])
    proc = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "out", "--chunk-size", value, check=False)
    assert proc.returncode == 2
    assert "--chunk-size" in proc.stderr and "power of two" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_large_directories_and_names_sorting_before_dot(tmp_path: Path) -> None:
    """Directories spanning several 4 KiB dirent blocks, names that sort before "." and
    "..", 255-byte names: the oracle and erofs-utils look every entry up."""
    names = [f"{p}{i:04d}-{'n' * (i % 200)}" for i in range(600) for p in ("!", "-", "f")][:1500]
    names += ["#", "+", "x" * 255]
    layer = tar_layer([(entry(f"big/{n}"), n.encode()) for n in names])
    src = make_image(tmp_path / "src", "v1", [layer])
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out)
    manifest = nydus_manifest(out, "v1")
    blobs, ids = blob_dir(out, manifest, tmp_path / "blobs")
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, manifest))
    report = check(boot, blobs)
    assert {p for p in report.files if p.startswith("/big/")} == {f"/big/{n}" for n in names}
    fsck_erofs(boot, report, tmp_path)
    listing = dump_erofs_ls(boot, report, tmp_path, "/big")
    assert sorted(listing) == sorted([".", "..", *names])
    tar = unpack_blob(blobs, ids[0], tmp_path / "l.tar")
    with tarfile.open(tar) as t:
        got = {m.name.lstrip("/").removeprefix("big/"): m for m in t.getmembers() if m.isfile()}
        assert sorted(got) == sorted(names)
        f = t.extractfile(got["x" * 255])
        assert f is not None and f.read() == b"x" * 255
