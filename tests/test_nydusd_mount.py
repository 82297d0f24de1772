"""nydusd as the oracle of `layerforge nydus-image`: upstream nydusd 2.2.0 mounts every kind
of Nydus image the suite makes over FUSE (one mount per image), and the mounted tree equals
the source image's merged rootfs as umoci unpacks it (names, types, modes, owners, sizes,
mtimes, symlink targets, devices, hard links, xattrs, contents). The blob cache shows what a
read fetched: one file's chunks, no more; a prefetch table's files, before any read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.nydus_support import (
    CheckReport,
    MiB,
    check,
    convert,
    entry,
    family,
    layered_image,
    make_image,
    nydus_manifest,
    tar_layer,
    umoci_rootfs,
)
from tests.nydusd_support import (
    MOUNT_TIMEOUT,
    ONDEMAND_WINDOW,
    PREFETCH_WINDOW,
    NydusMount,
    blob_chunks,
    mounted,
    nydusd_mount,
    read_ahead,
    tree,
)


@pytest.fixture(scope="module")
def overlay_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three overlay layers of the conversion tests (whiteouts, an opaque directory, hard
    links, a file shared between layers, xattrs, devices), gzip'd so umoci reads them."""
    return layered_image(tmp_path_factory.mktemp("overlay"))


@pytest.fixture(scope="module")
def overlay_rootfs(overlay_src: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return tree(umoci_rootfs(overlay_src, "v1", tmp_path_factory.mktemp("overlay-bundle") / "bundle"))


def chunks_of(report: CheckReport, paths: list[str]) -> dict[int, set[int]]:
    """blob index -> chunk indexes of the given files."""
    want: dict[int, set[int]] = {}
    for path in paths:
        for place in report.files[path].places:
            want.setdefault(place.blob_index, set()).add(place.index)
    return want


def ready(m: NydusMount, report: CheckReport) -> dict[int, set[int]]:
    """blob index (in the bootstrap's blob table) -> chunk indexes the blob cache holds."""
    assert sorted(b[0] for b in report.blobs) == sorted(m.blob_ids)
    return {i: got for i, (blob_id, _, _) in enumerate(report.blobs) if (got := m.ready_chunks(blob_id))}


def wait_ready(m: NydusMount, report: CheckReport, want: dict[int, set[int]]) -> dict[int, set[int]]:
    """What the blob cache holds once it holds every chunk of ``want``: nydusd marks a chunk in
    its chunk map after persisting it, which can lag the read that fetched it on a loaded
    machine (bounded: :data:`MOUNT_TIMEOUT`)."""
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while True:
        have = ready(m, report)
        if all(chunks <= have.get(blob, set()) for blob, chunks in want.items()):
            return have
        assert time.monotonic() < deadline, f"the cache holds {have}, want {want}"
        time.sleep(0.02)


def assert_fetched(m: NydusMount, report: CheckReport, paths: list[str], window: int = ONDEMAND_WINDOW) -> None:
    """The cache holds every chunk of ``paths`` (once nydusd has marked them, see
    :func:`wait_ready`); besides them only chunks nydusd reads ahead (following one of them
    within ``window`` in its blob), none of any other blob; and its sparse copy of each blob
    holds no more data than those chunks."""
    want = chunks_of(report, paths)
    have = wait_ready(m, report, want)
    for blob_index, (blob_id, _, _) in enumerate(report.blobs):
        mine, got = want.get(blob_index, set()), have.get(blob_index, set())
        assert mine <= got, (blob_id, sorted(mine - got))
        table = blob_chunks(m.blobs, blob_id)
        assert got - mine <= read_ahead(table, mine, window), (blob_id, sorted(got - mine))
        held, _ = m.cached_size(blob_id)
        assert held <= sum(table[i].uncompressed_size + 8192 for i in got), (blob_id, held)


def test_single_layer_dir_image(sample_tree: Path, tmp_path: Path) -> None:
    """Long and non-ASCII names, symlinks (dangling, absolute), three hard links, a fifo, a
    setuid file; the Nydus manifest read from a --merge-platform index."""
    src = tmp_path / "src"
    run_cli("dir-image", sample_tree, "--out", src, "--tag", "app:1", "--keep-setuid")
    out = tmp_path / "nydus"
    convert(f"{src}:app:1", out, "--tag", "app:1-nydus", "--merge-platform")
    with nydusd_mount(out, "app:1-nydus", tmp_path / "nydusd") as m:
        got = tree(m.root)
    expected = tree(umoci_rootfs(src, "app:1", tmp_path / "bundle"))
    assert got == expected
    assert expected["hardlinks"] == [["bin/blob-elsewhere", "data/blob-hardlink.bin", "data/blob.bin"]]
    assert expected["entries"]["bin/su"][1] == 0o4755


@pytest.mark.parametrize(
    "args",
    [("--chunk-size", "0x10000"), ("--compressor", "none", "--digester", "sha256", "--chunk-size", "0x100000")],
    ids=["zstd-64k", "raw-sha256-1m"],
)
def test_layers_mount_as_their_overlay_and_a_read_fetches_its_chunks(
    overlay_src: Path, overlay_rootfs: dict[str, object], tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = tmp_path / "nydus"
    convert(f"{overlay_src}:v1", out, *args)
    with nydusd_mount(out, "v1", tmp_path / "nydusd") as m:
        report = check(m.bootstrap)
        assert len(m.blob_ids) == 3
        assert ready(m, report) == {}, "mounting fetches no data"
        assert (m.root / "etc/passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"
        assert_fetched(m, report, ["/etc/passwd"])
        # The 3 MiB of layer 1's blob stay where they are, past nydusd's read-ahead window.
        lower = report.blobs[0][0]
        held, size = m.cached_size(lower)
        assert size > 3 * MiB and held <= ONDEMAND_WINDOW + 64 * 1024, (held, size)
        assert len(m.ready_chunks(lower)) < len(blob_chunks(m.blobs, lower)) // 2
        # Layer 2's copy of the shared file is layer 1's chunks: reading it fetches them
        # from layer 1's blob, and nothing of layer 2's.
        assert chunks_of(report, ["/data/copy.bin"]).keys() == {0}
        assert len(report.files["/data/copy.bin"].places) > 1
        (m.root / "data/copy.bin").read_bytes()
        assert_fetched(m, report, ["/etc/passwd", "/data/copy.bin"])
        got = tree(m.root)
    assert got == overlay_rootfs
    entries, meta = got["entries"], got["meta"]
    assert isinstance(entries, dict) and isinstance(meta, dict)
    assert "etc/old" not in entries and "opaque/lower" not in entries and "data/text" not in entries
    assert not [name for name in entries if ".wh." in name]
    assert entries["data/dir-becomes-link"] == ("symlink", "../etc")
    assert entries["dev/null"] == ("char", 0o666, 1, 3)
    assert meta["etc/xattr"][4] == {"user.color": b"blue"}


def test_chunk_dict_image_reads_the_dictionarys_blob(tmp_path: Path) -> None:
    one = family(tmp_path, "one", 2 * MiB)
    two = family(tmp_path, "two", 2 * MiB)
    dict_out = tmp_path / "dict"
    convert(f"{one}:v1", dict_out)
    out = tmp_path / "two-nydus"
    convert(f"{two}:v1", out, "--chunk-dict", f"{dict_out}:v1")
    with nydusd_mount(out, "v1", tmp_path / "nydusd") as m:
        report = check(m.bootstrap)
        dict_id = nydus_manifest(dict_out, "v1")["layers"][0]["digest"].split(":", 1)[1]
        assert chunks_of(report, ["/usr/lib/lib3.so"]).keys() == {[b[0] for b in report.blobs].index(dict_id)}
        assert len(report.files["/usr/lib/lib3.so"].places) == 2
        assert (m.root / "usr/lib/lib3.so").stat().st_size == MiB + 77 * 3
        (m.root / "usr/lib/lib3.so").read_bytes()
        assert_fetched(m, report, ["/usr/lib/lib3.so"])
        held, size = m.cached_size(dict_id)
        assert size > 12 * MiB and held <= 2 * MiB + ONDEMAND_WINDOW + 64 * 1024, (held, size)
        got = tree(m.root)
    assert got == tree(umoci_rootfs(two, "v1", tmp_path / "bundle"))


def test_prefetch_table_is_fetched_before_any_read(
    overlay_src: Path, overlay_rootfs: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "nydus"
    convert(f"{overlay_src}:v1", out, "--chunk-size", "0x10000", "--prefetch", "/etc", "/new")
    with nydusd_mount(out, "v1", tmp_path / "nydusd", prefetch=True) as m:
        report = check(m.bootstrap)
        table = [p for p, f in report.files.items() if f.kind == "file" and p.startswith(("/etc/", "/new/"))]
        assert sorted(table) == ["/etc/passwd", "/etc/xattr", "/new/deep/file"]
        assert_fetched(m, report, table, PREFETCH_WINDOW)  # before any read: the prefetch fetched them
        got = tree(m.root)
    assert got == overlay_rootfs


def test_directories_of_many_blocks(tmp_path: Path) -> None:
    names = [f"{p}{i:04d}-{'n' * (i % 150)}" for i in range(300) for p in ("!", "f")] + ["#", "x" * 255]
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry(f"big/{n}"), n.encode()) for n in names])])
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out)
    with nydusd_mount(out, "v1", tmp_path / "nydusd") as m:
        assert sorted(os.listdir(m.root / "big")) == sorted(names)
        got = tree(m.root)
    assert got == tree(umoci_rootfs(src, "v1", tmp_path / "bundle"))


def test_a_failing_test_leaves_no_mount_and_no_daemon(tmp_path: Path) -> None:
    src = make_image(tmp_path / "src", "v1", [tar_layer([(entry("a"), b"a")])])
    out = tmp_path / "nydus"
    convert(f"{src}:v1", out)
    seen: list[NydusMount] = []
    with pytest.raises(RuntimeError, match="the test body failed"), nydusd_mount(out, "v1", tmp_path / "nydusd") as m:
        seen.append(m)
        assert (m.root / "a").read_bytes() == b"a"
        raise RuntimeError("the test body failed")
    (m,) = seen
    assert mounted(m.root) is None
    with pytest.raises(ProcessLookupError):
        os.kill(m.pid, 0)
