"""Compressed layer blobs: standard streams any reader accepts, identical for any thread count."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from layerforge import _native
from tests.helpers import run


def build(src: Path, out: Path, compression: str, level: int | None = None, threads: int = 0) -> Path:
    spec = _native.LayerSpec()
    spec.add_tree(src, "/")
    (r,) = _native.build_layers([spec], out / "b", out / "t", compression=compression, level=level, threads=threads)
    blob = out / "b" / r.digest.split(":")[1]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == r.digest.split(":")[1]
    assert blob.stat().st_size == r.size
    return blob


def plain_tar(src: Path, out: Path) -> bytes:
    return build(src, out, "none").read_bytes()


def test_gzip_blob_is_standard(sample_tree: Path, tmp_path: Path) -> None:
    tar = plain_tar(sample_tree, tmp_path / "plain")
    blob = build(sample_tree, tmp_path / "gz", "gzip")
    run("gzip", "-t", blob)
    assert gzip.decompress(blob.read_bytes()) == tar  # Python's zlib
    out = tmp_path / "pigz.tar"
    with open(out, "wb") as f:
        subprocess.run(["pigz", "-dc", str(blob)], stdout=f, check=True, timeout=60)
    assert out.read_bytes() == tar
    header = blob.read_bytes()[:10]
    assert header == bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]), "no name, no mtime"


def test_zstd_blob_is_standard(sample_tree: Path, tmp_path: Path) -> None:
    tar = plain_tar(sample_tree, tmp_path / "plain")
    blob = build(sample_tree, tmp_path / "zs", "zstd")
    run("zstd", "-t", "-q", blob)
    out = tmp_path / "x.tar"
    run("zstd", "-d", "-q", "-o", out, blob)
    assert out.read_bytes() == tar


@pytest.mark.parametrize(("compression", "level"), [("gzip", 1), ("gzip", 6), ("gzip", 9), ("zstd", 3), ("zstd", 19)])
def test_output_does_not_depend_on_thread_count(
    sample_tree: Path, tmp_path: Path, compression: str, level: int
) -> None:
    digests = {
        hashlib.sha256(build(sample_tree, tmp_path / f"t{n}", compression, level, n).read_bytes()).hexdigest()
        for n in (1, 2, 5)
    }
    assert len(digests) == 1


def test_gzip_levels_trade_size(sample_tree: Path, tmp_path: Path) -> None:
    sizes = [build(sample_tree, tmp_path / f"l{lv}", "gzip", lv).stat().st_size for lv in (1, 6, 9)]
    assert sizes[0] > sizes[1] >= sizes[2]


@pytest.mark.parametrize(("compression", "level"), [("gzip", 0), ("gzip", 10), ("zstd", 0), ("zstd", 23), ("none", 3)])
def test_bad_levels_are_refused(sample_tree: Path, tmp_path: Path, compression: str, level: int) -> None:
    with pytest.raises(_native.RuleError, match="level") as e:
        build(sample_tree, tmp_path / "x", compression, level)
    assert (e.value.setting, e.value.value) == ("layer.level", str(level))


def test_unknown_compression(sample_tree: Path, tmp_path: Path) -> None:
    """The core reports the setting, the value and the rule; it names no flag."""
    with pytest.raises(_native.RuleError) as e:
        build(sample_tree, tmp_path / "x", "lzma")
    assert (e.value.setting, e.value.value, e.value.rule) == (
        "layer.compression",
        "'lzma'",
        "is not one of gzip, zstd, none",
    )
    assert str(e.value) == "'lzma' is not one of gzip, zstd, none"


def test_decompress_blob_verifies_both_digests(sample_tree: Path, tmp_path: Path) -> None:
    tar = plain_tar(sample_tree, tmp_path / "plain")
    for compression in ("gzip", "zstd", "none"):
        blob = build(sample_tree, tmp_path / compression, compression)
        dest = tmp_path / f"{compression}.tar"
        r = _native.decompress_blob(blob, dest)
        assert r.format == compression
        assert r.digest == "sha256:" + blob.name
        assert r.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
        assert dest.read_bytes() == tar


def test_decompress_rejects_corrupt_and_trailing_data(sample_tree: Path, tmp_path: Path) -> None:
    blob = build(sample_tree, tmp_path / "gz", "gzip")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(_native.CorruptError):
        _native.decompress_blob(bad, tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()
    trailing = tmp_path / "trailing.gz"
    trailing.write_bytes(blob.read_bytes() + b"garbage!")
    with pytest.raises(_native.CorruptError):
        _native.decompress_blob(trailing)


def _golden_spec() -> _native.LayerSpec:
    """3.5 MiB of fixed text-like content (four 1 MiB gzip blocks): the same on every machine."""
    spec = _native.LayerSpec()
    words = [b"layer", b"forge", b"nix", b"store", b"blob", b"gzip", b"tar"]
    for i in range(7):
        body = b" ".join(words[(i * j * 7 + j) % 7] + str(j % 97).encode() for j in range(90_000))
        spec.add_file(f"/share/doc/file{i}.txt", body[: 512 * 1024 + i * 1000])
    return spec


# The gzip layer of _golden_spec(): pinned so that a change of the engine's bytes (another
# libdeflate, another level mapping, another framing) fails here, deliberately, on any machine.
GOLDEN_GZIP_DIGEST = "sha256:45b7bae6b2994e24b508760a7a2f9887a3d230cadf925a561c0834dbbfc89fc1"


def test_gzip_layer_bytes_are_pinned_for_any_thread_count(tmp_path: Path) -> None:
    digests = set()
    for n in (1, 2, 3, 8):
        (r,) = _native.build_layers(
            [_golden_spec()], tmp_path / f"b{n}", tmp_path / f"t{n}", compression="gzip", threads=n
        )
        blob = (tmp_path / f"b{n}" / r.digest.split(":")[1]).read_bytes()
        assert gzip.decompress(blob)[:512] != b"\0" * 512
        assert blob.count(bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])) >= 4, "one gzip member per 1 MiB block"
        digests.add(r.digest)
    assert digests == {GOLDEN_GZIP_DIGEST}
