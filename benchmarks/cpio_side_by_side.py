#!/usr/bin/env python3
"""Side by side: layerforge's reproducible newc cpio (the initrd of unikraft_image) against
the shell pipelines it replaces, on the same tree, in one run, best of N, ratios printed:

  gzip -6 : layerforge cpio + gzip level 6  vs  find . | sort | cpio -o -H newc | gzip -6
  pigz    : the same                        vs  find . | sort | cpio -o -H newc | pigz -6 -p2
  none    : layerforge plain cpio           vs  find . | sort | cpio -o -H newc

layerforge runs in a child process timing its own work: walking the tree, writing the cpio,
sha256 of the archive and of the compressed bytes, compression and the atomic file write.
The peers do less (no digests) and are not reproducible (host inode numbers, mtimes, owners).

Usage: .venv/bin/python benchmarks/cpio_side_by_side.py [--tree DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from layerforge import _native
tree, out, compression = sys.argv[1:4]
spec = _native.LayerSpec()
spec.add_tree(tree)
t = time.perf_counter()
(r,) = _native.build_layers([spec], out + "/blobs", out + "/tmp", format="cpio", compression=compression, level=6 if compression == "gzip" else None)
print(json.dumps({"seconds": time.perf_counter() - t, "size": r.size, "cpio": r.uncompressed_size}))
"""


def ours(tree: Path, work: Path, compression: str) -> dict[str, float]:
    out = work / f"lf-{compression}"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(out), compression], capture_output=True, text=True, check=True
    )
    shutil.rmtree(out, ignore_errors=True)
    return dict(json.loads(proc.stdout))


def peer(tree: Path, compressor: str, out: Path) -> tuple[float, int]:
    pipe = f"cd '{tree}' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet"
    if compressor:
        pipe += f" | {compressor}"
    t = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", f"{pipe} > '{out}'"], check=True)
    return time.perf_counter() - t, out.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path("/usr/lib/x86_64-linux-gnu"), help="a >= 200 MB tree")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for tool in ("cpio", "gzip", "pigz", "find", "sort"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool}")
    work = Path(tempfile.mkdtemp(prefix="lf-cpio-bench-"))
    try:
        subprocess.run(f"tar -cf - -C '{args.tree}' . | cat > /dev/null", shell=True, check=True)
        rows = []
        for mode, compression, compressor in (
            ("gzip -6", "gzip", "gzip -6"),
            ("pigz -6", "gzip", "pigz -6 -p2"),
            ("none", "none", ""),
        ):
            peer_runs = [peer(args.tree, compressor, work / "peer.out") for _ in range(args.runs)]
            peer_s, peer_size = min(peer_runs)
            lf = min((ours(args.tree, work, compression) for _ in range(args.runs)), key=lambda r: r["seconds"])
            rows.append((mode, lf, peer_s, peer_size))
        size = rows[0][1]["cpio"]
        print(f"tree {args.tree}: {size / 1e6:.0f} MB of cpio, best of {args.runs}")
        print(f"\n{'peer':8} {'ours s':>8} {'peer s':>8} {'ratio':>7} {'target':>7} {'size vs peer':>13}")
        for mode, lf, peer_s, peer_size in rows:
            ratio = peer_s / lf["seconds"]
            print(
                f"{mode:8} {lf['seconds']:8.2f} {peer_s:8.2f} {ratio:6.2f}x {'1.5x':>7} {100 * (lf['size'] / peer_size - 1):+12.2f}%"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
