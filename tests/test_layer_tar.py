"""The native tar writer, checked with independent readers (GNU tar, Python's tarfile)."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from layerforge import _native
from tests.conftest import make_sample_tree
from tests.helpers import run, snapshot


def build_plain(src: Path, out: Path, **spec_kw: object) -> tuple[_native.LayerResult, Path]:
    spec = _native.LayerSpec(**spec_kw)  # type: ignore[arg-type]
    spec.add_tree(src, "/")
    (r,) = _native.build_layers([spec], out / "blobs", out / "tmp", compression="none")
    return r, out / "blobs" / r.digest.split(":")[1]


def expected_snapshot(src: Path) -> dict[str, object]:
    snap = snapshot(src)
    # setuid/setgid are dropped unless asked for
    for rel, e in snap["entries"].items():  # type: ignore[union-attr]
        if e[0] == "file" and e[1] & 0o6000:
            snap["entries"][rel] = ("file", e[1] & ~0o6000, e[2])  # type: ignore[index]
    return snap


def test_gnu_tar_extracts_the_same_tree(sample_tree: Path, tmp_path: Path) -> None:
    r, blob = build_plain(sample_tree, tmp_path / "out")
    assert r.digest == r.diff_id == "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    assert r.size == r.uncompressed_size == blob.stat().st_size
    dest = tmp_path / "x"
    dest.mkdir()
    run("tar", "-xpf", blob, "-C", dest)
    assert snapshot(dest) == expected_snapshot(sample_tree)


def test_headers_are_normalised_and_sorted(sample_tree: Path, tmp_path: Path) -> None:
    _, blob = build_plain(sample_tree, tmp_path / "out", mtime=1234567)
    with tarfile.open(blob) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/")), "component-wise order"
    assert len(names) == len(set(names))
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "root", 1234567), m.name
        assert not m.pax_headers.keys() - {"path", "linkpath"}, (m.name, m.pax_headers)
    by_name = {m.name: m for m in members}
    assert by_name["bin/alias"].issym() and by_name["bin/alias"].linkname == "tool"
    assert by_name["dangling"].linkname == "does/not/exist"
    assert by_name["longlink"].linkname == "t" * 150
    assert by_name["fifo"].isfifo()
    assert by_name["bin/su"].mode == 0o755
    assert by_name["etc/private"].mode == 0o600
    assert by_name["empty-dir"].isdir()
    # one inode, three names: the first in archive order holds the data, the others link to it
    assert by_name["bin/blob-elsewhere"].isfile()
    assert by_name["data/blob-hardlink.bin"].islnk()
    assert by_name["data/blob-hardlink.bin"].linkname == "bin/blob-elsewhere"
    assert by_name["data/blob.bin"].linkname == "bin/blob-elsewhere"
    long_names = [n for n in names if len(n.encode()) > 255]
    assert long_names
    assert all(by_name[n].pax_headers.get("path", "").rstrip("/") == n for n in long_names)
    assert by_name["données/日本語.txt"].pax_headers["path"] == "données/日本語.txt"


def test_gnu_tar_listing_has_no_warnings(sample_tree: Path, tmp_path: Path) -> None:
    _, blob = build_plain(sample_tree, tmp_path / "out")
    proc = run("tar", "--warning=all", "-tvf", blob)
    assert proc.stderr == ""
    assert "root/root" in proc.stdout and "1970-01-01" in proc.stdout


def test_no_host_leakage_same_digest_from_any_copy(tmp_path: Path) -> None:
    a = make_sample_tree(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    b.parent.mkdir()
    run("cp", "-a", a, b)  # keeps hard links, fifos and special bits
    # Different owners, times and directory order on disk must not change a byte.
    for p in [b, *b.rglob("*")]:
        os.chown(p, 1234, 5678, follow_symlinks=False)
        if not p.is_symlink():
            os.utime(p, (1_700_000_000, 1_700_000_000))
    (b / "bin" / "su").chmod(0o4755)  # chown cleared setuid
    ra, _ = build_plain(a, tmp_path / "out-a")
    rb, _ = build_plain(b, tmp_path / "out-b")
    assert ra.digest == rb.digest


def test_source_date_epoch_and_setuid_option(sample_tree: Path, tmp_path: Path) -> None:
    r1, _ = build_plain(sample_tree, tmp_path / "o1", mtime=1)
    r2, blob = build_plain(sample_tree, tmp_path / "o2", mtime=1700000000, keep_setuid=True)
    assert r1.digest != r2.digest
    with tarfile.open(blob) as tar:
        su = tar.getmember("bin/su")
    assert su.mtime == 1700000000 and su.mode == 0o4755


def test_char_and_block_devices(tmp_path: Path) -> None:
    root = tmp_path / "dev-root"
    root.mkdir()
    try:
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "loop", 0o660 | stat.S_IFBLK, os.makedev(7, 300))
    except PermissionError:
        pytest.fail("device nodes need root; the test suite runs as root (./scripts/test)")
    _, blob = build_plain(root, tmp_path / "out")
    with tarfile.open(blob) as tar:
        null, loop = tar.getmember("null"), tar.getmember("loop")
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
    assert loop.isblk() and (loop.devmajor, loop.devminor) == (7, 300)


def test_synthetic_entries_and_placement(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("hello\n")
    spec = _native.LayerSpec()
    spec.add_path(src, "/opt/app/hello.txt")
    spec.add_file("/etc/motd", b"welcome\n", 0o640)
    spec.add_symlink("/usr/bin/app", "/opt/app/hello.txt")
    spec.add_dir("/var/empty", 0o700)
    entries = spec.entries()
    assert [e[0] for e in entries] == [
        "etc",
        "etc/motd",
        "opt",
        "opt/app",
        "opt/app/hello.txt",
        "usr",
        "usr/bin",
        "usr/bin/app",
        "var",
        "var/empty",
    ]
    assert ("etc/motd", "file", 0o640, 8, None) in entries
    assert ("usr/bin/app", "symlink", 0o777, 0, "/opt/app/hello.txt") in entries
    (r,) = _native.build_layers([spec], tmp_path / "b", tmp_path / "t", compression="none")
    dest = tmp_path / "x"
    dest.mkdir()
    run("tar", "-xpf", tmp_path / "b" / r.digest.split(":")[1], "-C", dest)
    assert (dest / "opt/app/hello.txt").read_text() == "hello\n"
    assert os.readlink(dest / "usr/bin/app") == "/opt/app/hello.txt"
    assert stat.S_IMODE((dest / "var/empty").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s, t: s.add_path(t / "missing", "/x"), "missing"),
        (lambda s, t: s.add_file("../../etc/passwd", b"x"), "escapes the image root"),
        (lambda s, t: s.add_file("/a/../../b", b"x"), "escapes the image root"),
        (lambda s, t: (s.add_file("/x", b"1"), s.add_file("/x", b"2")), "given twice"),
        (lambda s, t: (s.add_file("/x", b"1"), s.add_file("/x/y", b"2")), "is a file"),
        (lambda s, t: s.add_file("/", b"x"), "image root"),
    ],
)
def test_bad_specs_fail_before_writing(tmp_path: Path, setup: object, message: str) -> None:
    spec = _native.LayerSpec()
    setup(spec, tmp_path)  # type: ignore[operator]
    with pytest.raises((_native.InputError, OSError), match=message):
        _native.build_layers([spec], tmp_path / "b", tmp_path / "t", compression="gzip")
    assert not any((tmp_path / "b").iterdir())
    assert not any((tmp_path / "t").iterdir())


def test_socket_is_refused_with_its_path(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "ok").write_text("fine")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "daemon.sock"))
    try:
        spec = _native.LayerSpec()
        spec.add_tree(root)
        with pytest.raises(_native.InputError, match=r"socket .*daemon\.sock"):
            _native.build_layers([spec], tmp_path / "b", tmp_path / "t")
    finally:
        s.close()
    assert not any((tmp_path / "b").iterdir())


def test_many_layers_concurrently_keep_order(tmp_path: Path) -> None:
    specs = []
    for i in range(12):
        spec = _native.LayerSpec()
        spec.add_file(f"/layer/{i}", (f"layer {i}\n" * (i * 5000 + 1)).encode())
        specs.append(spec)
    results = _native.build_layers(specs, tmp_path / "b", tmp_path / "t", compression="gzip")
    for i, r in enumerate(results):
        with tarfile.open(tmp_path / "b" / r.digest.split(":")[1]) as tar:
            assert tar.getnames() == ["layer", f"layer/{i}"]
