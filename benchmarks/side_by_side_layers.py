#!/usr/bin/env python3
"""Side by side: layerforge's layer pipeline against the shell pipelines it replaces.

One run, same tree, warm page cache, best of N, ratios printed:

  gzip : layerforge gzip (default level 6)  vs  tar --sort=name | pigz -6 -p2 | tee >(sha256sum) > out
  zstd : layerforge zstd (level 3)          vs  zstd -3 -T2 over the pre-made tar (no tar, no digests)
  none : layerforge uncompressed throughput (target >= 1 GB/s) and peak RSS on a >= 2 GB layer

layerforge runs in a child process that reports its own time and peak RSS; its time covers
walking the tree, writing the tar, both sha256 digests, compression and the atomic blob write.

Usage: .venv/bin/python benchmarks/side_by_side_layers.py [--tree DIR] [--big-tree DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from layerforge import _native
tree, out, compression = sys.argv[1:4]
spec = _native.LayerSpec()
spec.add_tree(tree)
t = time.perf_counter()
(r,) = _native.build_layers([spec], out + "/blobs", out + "/tmp", compression=compression)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "size": r.size, "tar": r.uncompressed_size,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ours(tree: Path, work: Path, compression: str) -> dict[str, float]:
    out = work / f"lf-{compression}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(out), compression],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    return dict(json.loads(proc.stdout))


def timed_shell(cmd: str) -> float:
    t = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def best(fn, runs: int):  # type: ignore[no-untyped-def]
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r["seconds"] if isinstance(r, dict) else r)


def warm(tree: Path) -> int:
    subprocess.run(f"tar -cf - -C '{tree}' . | cat > /dev/null", shell=True, check=True)
    du = subprocess.run(["du", "-sb", str(tree)], check=True, capture_output=True, text=True)
    return int(du.stdout.split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path("/usr/lib/x86_64-linux-gnu"))
    ap.add_argument("--big-tree", type=Path, default=Path("/usr/lib"), help="a >= 2 GB tree for the RSS check")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir)")
    args = ap.parse_args()

    for tool in ("pigz", "zstd", "tar", "sha256sum"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool}")
    work = Path(tempfile.mkdtemp(prefix="lf-bench-", dir=args.work))
    try:
        size = warm(args.tree)
        print(f"tree {args.tree}: {size / 1e6:.0f} MB, {os.cpu_count()} cores, best of {args.runs}")
        rows = []

        gz_out = work / "peer.tar.gz"
        peer_gz = best(
            lambda: timed_shell(
                f"tar --sort=name -cf - -C '{args.tree}' . | pigz -6 -p2 | tee >(sha256sum > /dev/null) > '{gz_out}'"
            ),
            args.runs,
        )
        peer_gz_size = gz_out.stat().st_size
        lf_gz = best(lambda: ours(args.tree, work, "gzip"), args.runs)
        rows.append(("gzip", lf_gz, peer_gz, lf_gz["size"] / peer_gz_size, 1.2, "tar|pigz -6 -p2|tee sha256sum"))

        tar_file = work / "pre.tar"
        subprocess.run(["tar", "--sort=name", "-cf", str(tar_file), "-C", str(args.tree), "."], check=True)
        zs_out = work / "peer.tar.zst"
        peer_zs = best(lambda: timed_shell(f"zstd -3 -T2 -q -f '{tar_file}' -o '{zs_out}'"), args.runs)
        peer_zs_size = zs_out.stat().st_size
        tar_file.unlink()
        lf_zs = best(lambda: ours(args.tree, work, "zstd"), args.runs)
        rows.append(("zstd", lf_zs, peer_zs, lf_zs["size"] / peer_zs_size, 0.9, "zstd -3 -T2 on pre-made tar"))

        print(f"\n{'mode':6} {'ours MB/s':>10} {'peer MB/s':>10} {'ratio':>7} {'target':>7} {'size vs peer':>13}  peer")
        for mode, lf, peer_s, size_ratio, target, label in rows:
            mbps = lf["tar"] / lf["seconds"] / 1e6
            peer_mbps = lf["tar"] / peer_s / 1e6
            ratio = peer_s / lf["seconds"]
            print(
                f"{mode:6} {mbps:10.0f} {peer_mbps:10.0f} {ratio:6.2f}x {target:6.1f}x {100 * (size_ratio - 1):+12.2f}%  {label}"
            )

        plain = best(lambda: ours(args.tree, work, "none"), args.runs)
        print(
            f"\nnone   {plain['tar'] / plain['seconds'] / 1e9:.2f} GB/s uncompressed (target >= 1 GB/s), "
            f"peak RSS {plain['rss_mb']:.0f} MB"
        )
        big_size = warm(args.big_tree)
        big = ours(args.big_tree, work, "none")
        print(
            f"none   {big['tar'] / 1e9:.2f} GB layer from {args.big_tree} ({big_size / 1e9:.2f} GB on disk): "
            f"{big['tar'] / big['seconds'] / 1e9:.2f} GB/s, peak RSS {big['rss_mb']:.0f} MB (target < 200 MB)"
        )
        for mode, r in (("gzip", lf_gz), ("zstd", lf_zs)):
            print(f"{mode}   peak RSS {r['rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
