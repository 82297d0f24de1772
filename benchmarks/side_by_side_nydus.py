#!/usr/bin/env python3
"""Side by side: ``layerforge nydus-image`` against upstream ``nydus-image`` 2.2.0 doing what
nydus-snapshotter's converter does (per layer: decompress | nydus-image create --type tar-rafs
--blob-inline-meta --features blob-toc, two layers at a time on the 2 cores; then extract each
layer's bootstrap and nydus-image merge).

One run, same image, warm page cache, best of N; prints times, the ratio and total blob sizes
(same compressor and chunk size). Then the chunk-dict experiment: a second image sharing most
files with the first, converted alone and with --chunk-dict, and the cut in new blob bytes.

The source image is built from --tree (default /usr/lib/x86_64-linux-gnu, ~690 MB): its
top-level entries are dealt into --layers gzip layers.

Usage: .venv/bin/python benchmarks/side_by_side_nydus.py [--tree DIR] [--layers N] [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.nydus_support import NYDUS_IMAGE

from layerforge import _native
from layerforge.layers.build import build_layers
from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.image_config import ImageConfig
from layerforge.model.platform import linux_platform

LAYERFORGE = str(Path(sys.executable).parent / "layerforge")


def du(p: Path) -> int:
    if p.is_symlink() or not p.is_dir():
        return p.lstat().st_size
    return sum(du(c) for c in p.iterdir())


def make_image(layout: Path, groups: list[list[Path]], ref: str) -> None:
    specs = []
    for group in groups:
        spec = _native.LayerSpec()
        for p in group:
            if p.is_dir() and not p.is_symlink():
                spec.add_tree(p, "/lib/" + p.name)
            else:
                spec.add_path(p, "/lib/" + p.name)
        specs.append(spec)
    out = OciLayout.create(layout)
    built = build_layers(out, specs, compression="gzip")
    config = ImageConfig(
        platform=linux_platform("amd64"), created="1970-01-01T00:00:01Z", diff_ids=tuple(b.diff_id for b in built)
    )
    write_image(out, config, [b.descriptor for b in built], annotations={}, ref=ref)


def deal(tree: Path, n: int, skip: int = 0) -> list[list[Path]]:
    """Top-level entries, biggest first, each to the lightest of n groups."""
    children = sorted(tree.iterdir(), key=lambda p: (-du(p), p.name))[skip:]
    groups: list[list[Path]] = [[] for _ in range(n)]
    sizes = [0] * n
    for c in children:
        i = sizes.index(min(sizes))
        groups[i].append(c)
        sizes[i] += du(c)
    return groups


def layer_blobs(layout: Path, ref: str) -> list[Path]:
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == ref]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    return [layout / "blobs/sha256" / layer["digest"].split(":")[1] for layer in manifest["layers"]]


def extract_bootstrap(blob: Path, dest: Path) -> None:
    """image.boot out of an inline-meta blob: ToC at the end (tar header after its data)."""
    with open(blob, "rb") as f:
        size = f.seek(0, 2)
        f.seek(size - 512)
        hdr = f.read(512)
        toc_size = int(hdr[124:136].rstrip(b"\0 ").decode(), 8)
        f.seek(size - 512 - toc_size)
        toc = f.read(toc_size)
        for i in range(0, toc_size, 128):
            e = toc[i : i + 128]
            flags = struct.unpack_from("<I", e, 0)[0]
            name = e[8:24].rstrip(b"\0")
            offset, csize = struct.unpack_from("<QQ", e, 56)
            if name == b"image.boot":
                f.seek(offset)
                data = f.read(csize)
                if flags & 0x2:
                    data = subprocess.run(["zstd", "-d", "-c"], input=data, capture_output=True, check=True).stdout
                dest.write_bytes(data)
                return
    raise SystemExit(f"{blob}: no image.boot in the ToC")


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def peer(blobs: list[Path], work: Path, chunk_size: int) -> tuple[float, int, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cpu = children_cpu()
    t = time.perf_counter()

    def one(i: int) -> Path:
        out = work / f"layer{i}.blob"
        subprocess.run(
            f"pigz -dc '{blobs[i]}' | '{NYDUS_IMAGE}' create --log-level warn --whiteout-spec none --fs-version 6 "
            f"--type tar-rafs --blob-inline-meta --features blob-toc --chunk-size {chunk_size:#x} "
            f"--blob '{out}' /dev/stdin",
            shell=True,
            check=True,
            executable="/bin/bash",
        )
        blob_id = hashlib.sha256(out.read_bytes()).hexdigest()
        final = work / blob_id
        out.rename(final)
        extract_bootstrap(final, work / f"{blob_id}.boot")
        return work / f"{blob_id}.boot"

    with ThreadPoolExecutor(2) as pool:
        boots = list(pool.map(one, range(len(blobs))))
    subprocess.run(
        [str(NYDUS_IMAGE), "merge", "--log-level", "warn", "--bootstrap", str(work / "merged.boot"), *map(str, boots)],
        check=True,
    )
    dt = time.perf_counter() - t
    size = sum(p.stat().st_size for p in work.iterdir() if len(p.name) == 64)
    return dt, size, children_cpu() - cpu


def ours(src: str, out: Path, *extra: str) -> tuple[float, dict[str, object], float]:
    shutil.rmtree(out, ignore_errors=True)
    cpu = children_cpu()
    t = time.perf_counter()
    proc = subprocess.run(
        [LAYERFORGE, "nydus-image", src, "--out", str(out), "--json", *extra], check=True, capture_output=True
    )
    return time.perf_counter() - t, dict(json.loads(proc.stdout)), children_cpu() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path("/usr/lib/x86_64-linux-gnu"))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunk-size", type=lambda s: int(s, 0), default=0x100000)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    if not NYDUS_IMAGE.is_file():
        sys.exit(f"missing {NYDUS_IMAGE}: run scripts/test once (it builds the reference nydus-image)")
    work = Path(tempfile.mkdtemp(prefix="lf-nydus-bench-", dir=args.work))
    try:
        src = work / "src"
        groups = deal(args.tree, args.layers)
        make_image(src, groups, "a")
        blobs = layer_blobs(src, "a")
        tar_bytes = sum(int(_native.decompress_blob(b).uncompressed_size) for b in blobs)
        print(
            f"image: {len(blobs)} gzip layers from {args.tree}, {tar_bytes / 1e6:.0f} MB of tar, "
            f"{sum(b.stat().st_size for b in blobs) / 1e6:.0f} MB compressed; {os.cpu_count()} cores; best of {args.runs}"
        )
        chunk = f"{args.chunk_size:#x}"
        peer_runs = [peer(blobs, work / "peer", args.chunk_size) for _ in range(args.runs)]
        peer_t, peer_size, _ = min(peer_runs)
        peer_cpu = min(r[2] for r in peer_runs)
        our_runs = [ours(f"{src}:a", work / "ours", "--chunk-size", chunk) for _ in range(args.runs)]
        our_t, result, _ = min(our_runs, key=lambda r: r[0])
        our_cpu = min(r[2] for r in our_runs)
        our_size = sum(int(b["size"]) for b in result["blobs"])  # type: ignore[union-attr,index,call-overload]
        print(f"\n{'tool':46} {'seconds':>8} {'CPU s':>7} {'MB/s of tar':>12} {'blob bytes':>14}")
        print(
            f"{'nydus-image create per layer (x2) + merge':46} {peer_t:8.2f} {peer_cpu:7.2f} "
            f"{tar_bytes / peer_t / 1e6:12.0f} {peer_size:14,}"
        )
        print(
            f"{'layerforge nydus-image':46} {our_t:8.2f} {our_cpu:7.2f} {tar_bytes / our_t / 1e6:12.0f} {our_size:14,}"
        )
        print(f"load average (1 min) after the runs {os.getloadavg()[0]:.1f}; our manifest {result['manifest']}")
        print(
            f"\nspeed-up {peer_t / our_t:.2f}x (target >= 2x), in CPU time {peer_cpu / our_cpu:.2f}x; "
            f"blob size {100 * (our_size / peer_size - 1):+.2f}% "
            f"(target within 2%); deduplicated against lower layers: "
            f"{sum(int(s['lower_bytes']) for s in result['layers']):,} bytes"  # type: ignore[union-attr,index,call-overload]
        )

        # Chunk dict: image b shares all but the two biggest entries of image a, plus its own.
        extra = work / "extra"
        extra.mkdir()
        (extra / "app.bin").write_bytes(os.urandom(20 << 20))
        groups_b = deal(args.tree, args.layers, skip=2)
        groups_b[-1].append(extra / "app.bin")
        make_image(src, groups_b, "b")
        ours(f"{src}:a", work / "dict", "--chunk-size", chunk)
        _, alone, _ = ours(f"{src}:b", work / "alone", "--chunk-size", chunk)
        t_dict, with_dict, _ = ours(
            f"{src}:b", work / "with-dict", "--chunk-size", chunk, "--chunk-dict", f"{work / 'dict'}:a"
        )
        a_new, d_new = int(alone["new_blob_bytes"]), int(with_dict["new_blob_bytes"])  # type: ignore[call-overload]
        print(
            f"\nchunk dict: image b alone writes {a_new:,} new blob bytes; with --chunk-dict of image a "
            f"{d_new:,} ({100 * (1 - d_new / a_new):.1f}% less, target >= 80%), reported saved "
            f"{int(with_dict['dict_saved_bytes']):,} bytes, in {t_dict:.2f} s"  # type: ignore[call-overload]
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
