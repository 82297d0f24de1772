"""nydus-image on hostile input: layers that are not what the image says, absurd thread
counts, converting into the source layout, images of many layers under a low fd limit, and
hostile tar members. Each failure is one line, exit 1 (2 for usage), and leaves the output as
it was; successes are checked with the reference nydus-image."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from layerforge.layout.oci_layout import OciLayout
from layerforge.model.descriptor import Descriptor
from tests.helpers import (
    assert_one_line_error,
    blob_path,
    index_entry,
    layerforge_bin,
    read_json_blob,
    run_cli,
    verify_blobs,
)
from tests.nydus_support import blob_dir, bootstrap_bytes, check, entry, make_image, nydus_manifest, tar_layer


def _tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path below ``root``: mode, size and content (files), to compare before/after.
    The layout's scratch directory must be empty (or gone) and is left out."""
    out: dict[str, tuple[int, int, bytes]] = {}
    scratch = root / ".layerforge-tmp"
    assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.iterdir())
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root and ".layerforge-tmp" in dirnames:
            dirnames.remove(".layerforge-tmp")
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, data)
    return out


def _existing_out(tmp_path: Path) -> Path:
    """An output layout that already holds an image (tag 'keep')."""
    out = tmp_path / "existing"
    make_image(out, "keep", [tar_layer([(entry("kept"), b"kept")])])
    return out


# -- 1. the layer blobs are what the manifest and config say ----------------------------------


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path, compression: str) -> None:
    one = tar_layer([(entry("a"), b"first layer")])
    two = tar_layer([(entry("b"), b"second layer")])
    other = tar_layer([(entry("b"), b"what the config names")])
    claimed = ["sha256:" + hashlib.sha256(t).hexdigest() for t in (one, other)]
    src = make_image(tmp_path / "src", "v1", [one, two], compression, diff_ids=claimed)
    real = "sha256:" + hashlib.sha256(two).hexdigest()
    out = _existing_out(tmp_path)
    before = _tree(out)
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "layer 2 (sha256:", real, claimed[1], "diff_id")
    assert _tree(out) == before, "the output layout changed"
    fresh = tmp_path / "fresh"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", fresh, check=False)
    assert_one_line_error(proc, real, claimed[1])
    assert not fresh.exists()


def _rewrite_manifest(layout: Path, ref: str, layer: int, **changes: object) -> None:
    """Point ``ref`` at a copy of its manifest whose layer ``layer`` has other fields."""
    lay = OciLayout.open(layout)
    manifest = read_json_blob(layout, index_entry(layout, ref)["digest"])
    manifest["layers"][layer].update(changes)
    desc = lay.put_json(manifest, manifest["mediaType"])
    lay.tag(Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size), ref)


def test_blob_of_another_size_than_its_descriptor_is_refused(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a" * 5000)])])
    manifest = read_json_blob(src, index_entry(src, "v1")["digest"])
    size = manifest["layers"][0]["size"]
    _rewrite_manifest(src, "v1", 0, size=size - 1)
    out = _existing_out(tmp_path)
    before = _tree(out)
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "layer 1 (sha256:", f"{size} bytes", str(size - 1))
    assert _tree(out) == before


def test_blob_that_is_not_its_digest_is_refused(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a" * 5000)])], "none")
    digest = read_json_blob(src, index_entry(src, "v1")["digest"])["layers"][0]["digest"]
    blob = blob_path(src, digest)
    data = bytearray(blob.read_bytes())
    data[600] ^= 1  # file data: the tar still parses
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, digest, "sha256:" + hashlib.sha256(data).hexdigest())
    assert not out.exists()


def test_chunk_dict_whose_bootstrap_layer_is_corrupt_is_refused(tmp_path: Path) -> None:
    base = tar_layer([(entry("lib.so"), os.urandom(300_000))])
    src = make_image(tmp_path / "src", "v1", [base])
    dict_out = tmp_path / "dict"
    run_cli("nydus-image", f"{src}:v1", "--out", dict_out)
    boot = nydus_manifest(dict_out, "v1")["layers"][-1]
    path = blob_path(dict_out, boot["digest"])
    os.chmod(path, 0o644)
    # Another valid bootstrap layer (that of another image), under the dictionary's digest.
    other = make_image(tmp_path / "other", "v1", [tar_layer([(entry("x"), b"x")])])
    other_out = tmp_path / "other-nydus"
    run_cli("nydus-image", f"{other}:v1", "--out", other_out)
    path.write_bytes(blob_path(other_out, nydus_manifest(other_out, "v1")["layers"][-1]["digest"]).read_bytes())
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, "--chunk-dict", f"{dict_out}:v1", check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "--chunk-dict", boot["digest"])
    assert not out.exists()


def test_chunk_dict_whose_bootstrap_layer_is_not_its_diff_id_is_refused(tmp_path: Path) -> None:
    """The bootstrap layer matches its own digest; only the config's diff_id says it is not
    the dictionary's: the config is rewritten with another diff_id and re-tagged."""
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("lib.so"), os.urandom(300_000))])])
    dict_out = tmp_path / "dict"
    run_cli("nydus-image", f"{src}:v1", "--out", dict_out)
    manifest = nydus_manifest(dict_out, "v1")
    config = read_json_blob(dict_out, manifest["config"]["digest"])
    lie = "sha256:" + hashlib.sha256(b"another bootstrap tar").hexdigest()
    config["rootfs"]["diff_ids"][-1] = lie
    layout = OciLayout.open(dict_out)
    with layout.locked():
        config_desc = layout.put_json(config, manifest["config"]["mediaType"])
        manifest["config"] = {**manifest["config"], "digest": config_desc.digest, "size": config_desc.size}
        layout.tag(layout.put_json(manifest, manifest["mediaType"]), "lie")
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, "--chunk-dict", f"{dict_out}:lie", check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "--chunk-dict", "diff_id", lie)
    assert not out.exists()


def test_chunk_dict_blob_that_is_not_its_digest_does_not_enter_the_output(tmp_path: Path) -> None:
    shared = os.urandom(400_000)
    one = make_image(tmp_path / "one", "v1", [tar_layer([(entry("lib.so"), shared)])])
    two = make_image(tmp_path / "two", "v1", [tar_layer([(entry("lib.so"), shared), (entry("own"), b"own")])])
    dict_out = tmp_path / "dict"
    run_cli("nydus-image", f"{one}:v1", "--out", dict_out)
    blob = nydus_manifest(dict_out, "v1")["layers"][0]
    path = blob_path(dict_out, blob["digest"])
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{two}:v1", "--out", out, "--chunk-dict", f"{dict_out}:v1", check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, blob["digest"])
    assert not out.exists()


# -- 2. many layers, few file descriptors -------------------------------------------------------


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def _many_layers(n: int, with_data_every: int) -> list[bytes]:
    """``n`` layers, each a directory with an empty file and a symlink; every
    ``with_data_every``-th one also holds data of its own (and so makes a Nydus blob)."""
    layers = []
    for i in range(n):
        members: list[tuple[tarfile.TarInfo, bytes | None]] = [
            (entry(f"l{i:03d}", "dir"), None),
            (entry(f"l{i:03d}/empty"), b""),
            (entry(f"l{i:03d}/link", "symlink", link="empty"), None),
        ]
        if i % with_data_every == 0:
            members.append((entry(f"l{i:03d}/data"), f"layer {i}\n".encode() * (i + 1)))
        layers.append(tar_layer(members))
    return layers


def test_600_layers_convert_under_a_256_fd_limit(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", _many_layers(600, with_data_every=25))
    out = tmp_path / "out"
    proc = subprocess.run(
        [layerforge_bin(), "nydus-image", f"{src}:v1", "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_low_fd_limit,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["blobs"]) == 24
    manifest = nydus_manifest(out, "v1")
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, manifest))
    blobs, _ = blob_dir(out, manifest, tmp_path / "blobs")
    report = check(boot, blobs)
    assert {f"/l{i:03d}/empty" for i in range(600)} <= set(report.files)
    assert report.files["/l575/data"].size == len(b"layer 575\n") * 576
    assert report.files["/l599/link"].link == "empty"
    assert len(report.blobs) == 24
    assert verify_blobs(out) == len(list((out / "blobs" / "sha256").iterdir()))


def test_more_blobs_than_rafs_v6_can_address_is_an_error(tmp_path: Path) -> None:
    """A chunk names its blob in 8 bits: 256 layers with data of their own cannot be one
    RAFS v6 image (the blob number used to wrap around, pointing chunks at other blobs)."""
    src = make_image(tmp_path / "src", "v1", _many_layers(256, with_data_every=1), "none")
    out = _existing_out(tmp_path)
    before = _tree(out)
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "256 Nydus blobs", "255")
    assert _tree(out) == before


# -- 3. converting into the source layout ---------------------------------------------------------


def test_in_place_conversion_keeps_the_source_tag(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a")])])
    original = index_entry(src, "v1")
    before = _tree(src)
    proc = run_cli("nydus-image", f"{src}:v1", "--out", src, check=False)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--tag", "'v1'", "source image")
    assert _tree(src) == before
    # Same with the tag given, and through another spelling of the same directory.
    proc = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "." / "src", "--tag", "v1", check=False)
    assert proc.returncode == 2, proc.stderr
    assert _tree(src) == before
    # A new tag: the source keeps its image, the Nydus image gets the new tag.
    run_cli("nydus-image", f"{src}:v1", "--out", src, "--tag", "v1-nydus")
    assert index_entry(src, "v1") == original
    assert nydus_manifest(src, "v1-nydus")["layers"][-1]["annotations"]["containerd.io/snapshot/nydus-bootstrap"]
    assert verify_blobs(src) > 0


# -- 4. thread counts ------------------------------------------------------------------------------


def test_absurd_thread_counts_are_usage_errors(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a")])])
    for value in ("100000", "-1", "257"):
        proc = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "out", "--threads", value, check=False)
        assert proc.returncode == 2, proc.stderr
        assert_one_line_error(proc, "--threads", value)
        assert not (tmp_path / "out").exists()


_CORE_THREADS = """
import sys
import tarfile
from layerforge import _native
layer, out = sys.argv[1], sys.argv[2]
for threads in (100_000, -1):
    for call in (
        lambda: _native.convert_nydus([(layer, None, None, None, "layer 1")], out + "/b", out + "/t", threads=threads),
        lambda: _native.build_layers([_native.LayerSpec()], out + "/b", out + "/t", threads=threads),
    ):
        try:
            call()
        except _native.InputError as e:
            print(e)
        else:
            print("accepted", threads)
"""


def test_the_core_refuses_absurd_thread_counts_by_itself(tmp_path: Path) -> None:
    layer = tmp_path / "l.tar"
    layer.write_bytes(tar_layer([(entry("a"), b"a")]))
    proc = subprocess.run(
        [sys.executable, "-c", _CORE_THREADS, str(layer), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "threads: 100000 is more than 256 (0 means one per core)",
        "threads: 100000 is more than 256 (0 means one per core)",
        "threads: -1 is negative (0 means one per core)",
        "threads: -1 is negative (0 means one per core)",
    ], proc.stdout


# -- 5. hostile tar members ------------------------------------------------------------------------


def _hostile_layers() -> dict[str, tuple[bytes, list[str]]]:
    """Layer tar -> what the one-line error must say (the member's name among it)."""
    ok = tar_layer([(entry("a"), b"a")])
    return {
        "nul-in-pax-name": (
            tar_layer([(entry("x", pax_headers={"path": "evil\x00name"}), b"x")]),
            ["evil\\x00name", "NUL"],
        ),
        "nul-in-link-target": (
            tar_layer([(entry("l", "symlink", pax_headers={"linkpath": "/etc\x00/passwd"}), None)]),
            ["'l'", "NUL"],
        ),
        "hardlink-to-later-member": (
            tar_layer([(entry("h", "hardlink", link="later"), None), (entry("later"), b"x")]),
            ["'h'", "not earlier in the layer"],
        ),
        "hardlink-escaping": (
            tar_layer([(entry("h", "hardlink", link="../../etc/passwd"), None)]),
            ["'h'", "'..'"],
        ),
        "hardlink-absolute": (
            tar_layer([(entry("a"), b"a"), (entry("h", "hardlink", link="/a"), None)]),
            ["'h'", "absolute"],
        ),
        "whiteout-dot": (tar_layer([(entry("d/.wh.."), b"")]), ["'d/.wh..'", "whiteout"]),
        "whiteout-dotdot": (tar_layer([(entry(".wh..."), b"")]), ["'.wh...'", "whiteout"]),
        "whiteout-empty": (tar_layer([(entry("d/.wh."), b"")]), ["'d/.wh.'", "whiteout"]),
        "deep-path": (
            tar_layer([(entry("/".join(["d"] * 3000) + "/f"), b"deep")]),
            ["d/d/d", "longer than"],
        ),
        "long-component": (tar_layer([(entry("n" * 256), b"x")]), ["nnnn", "255"]),
        "truncated": (ok[:700], ["'a'"]),
        # The inode's xattr count has 16 bits: 300 KB of xattrs used to be recorded short.
        "xattrs-too-large": (
            tar_layer([(entry("x", pax_headers={f"SCHILY.xattr.user.x{i}": "v" * 60_000 for i in range(5)}), b"x")]),
            ["'/x'", "262148"],
        ),
        "escape-in-name": (
            tar_layer([(entry("x\x1b[2Jy", "hardlink", link="missing"), None)]),
            ["x\\x1b[2Jy"],
        ),
    }


@pytest.mark.parametrize("case", sorted(_hostile_layers()))
def test_hostile_tar_members_fail_with_the_member_named(tmp_path: Path, case: str) -> None:
    layer, needles = _hostile_layers()[case]
    src = make_image(tmp_path / "src", "v1", [layer], "none")
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "layer 1 (sha256:", *needles)
    assert "\x1b" not in proc.stderr
    assert not out.exists()


def _raw_member(name: bytes, size_field: bytes, typeflag: bytes = b"0", data: bytes = b"") -> bytes:
    """A ustar header with raw field bytes (checksum made right), then ``data``."""
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}\0 ".encode()
    pad = (-len(data)) % 512
    return bytes(h) + data + b"\0" * pad


@pytest.mark.parametrize(
    ("case", "tar", "needles"),
    [
        ("garbage-octal", _raw_member(b"bad", b"12z4567\0\0\0\0\0"), ["'bad'", "size"]),
        ("negative-size", _raw_member(b"neg", b"-0000000001\0"), ["'neg'", "size"]),
        (
            "size-past-the-end",
            _raw_member(b"big", b"77777777777\0", data=b"only this") + b"\0" * 1024,
            ["'big'", "ends"],
        ),
        ("huge-base256-size", _raw_member(b"huge", b"\x80" + b"\xff" * 11), ["'huge'"]),
        (
            "pax-bad-length",
            _raw_member(b"././@PaxHeader", b"00000000020\0", b"x", b"99 path=x\n\0\0\0\0\0\0\0\0\0\0")
            + _raw_member(b"f", b"00000000000\0"),
            ["PAX"],
        ),
        (
            "pax-huge",
            _raw_member(b"././@PaxHeader", b"77777777777\0", b"x") + b"\0" * 4096,
            ["PAX", "larger than"],
        ),
    ],
)
def test_hostile_tar_headers_fail_with_the_member_named(
    tmp_path: Path, case: str, tar: bytes, needles: list[str]
) -> None:
    src = make_image(tmp_path / "src", "v1", [tar + b"\0" * 1024], "gzip")
    out = tmp_path / "out"
    proc = run_cli("nydus-image", f"{src}:v1", "--out", out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "layer 1 (sha256:", *needles)
    assert not out.exists()


def test_symlink_targets_are_kept_but_never_written_through(tmp_path: Path) -> None:
    """A symlink may point anywhere (it is read inside the container), but no entry is
    placed through it, and every entry of the bootstrap lies below '/'."""
    links = [
        (entry("up", "symlink", link="../../../../tmp"), None),
        (entry("abs", "symlink", link="/etc"), None),
        (entry("ok/file"), b"fine"),
    ]
    src = make_image(tmp_path / "src", "v1", [tar_layer([*links, (entry("up/planted"), b"x")])], "none")
    proc = run_cli("nydus-image", f"{src}:v1", "--out", tmp_path / "bad", check=False)
    assert_one_line_error(proc, "'up/planted'", "symlink")
    assert not (tmp_path / "bad").exists()
    # In a later layer, the name is a directory of that layer: it replaces the symlink.
    upper = tar_layer([(entry("abs/planted"), b"x")])
    src = make_image(tmp_path / "src2", "v1", [tar_layer(links), upper], "none")
    out = tmp_path / "out"
    run_cli("nydus-image", f"{src}:v1", "--out", out)
    boot = tmp_path / "image.boot"
    boot.write_bytes(bootstrap_bytes(out, nydus_manifest(out, "v1")))
    report = check(boot)
    assert set(report.files) == {"/", "/up", "/abs", "/abs/planted", "/ok", "/ok/file"}
    assert report.files["/up"].link == "../../../../tmp"
    assert report.files["/abs"].kind == "dir"
