#!/usr/bin/env python3
"""Pulling a 30-layer, >= 300 MB image from a local docker-registry: `layerforge pull` vs
`skopeo copy docker://... oci:...`.

The image is built locally (random data, so nothing compresses or deduplicates) and pushed
once to a docker-registry on 127.0.0.1; every pull goes to a fresh, empty layout directory
(nothing to skip), so both tools fetch and verify every byte. Best of N, ratio printed.
Usage: .venv/bin/python benchmarks/pull_side_by_side.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.registry_support import Registry

from benchmarks.push_side_by_side import make_image

LAYERFORGE = str(Path(sys.executable).parent / "layerforge")


def timed(argv: list[str], out: Path, cpu: list[float]) -> float:
    """Wall time of one run into an empty ``out``; its CPU time (user + system) goes to ``cpu``."""
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--layer-mb", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=4, help="layerforge pull --jobs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-pull-bench-") as tmp:
        work = Path(tmp)
        size = make_image(work / "layout", args.layers, args.layer_mb)
        reg = Registry(work / "registry").start()
        try:
            subprocess.run(
                [LAYERFORGE, "push", f"{work / 'layout'}:bench", f"{reg.host}/team/app:1"],
                check=True, stdout=subprocess.DEVNULL, env={**os.environ, "LAYERFORGE_CACHE_DIR": str(work / "c")},
            )  # fmt: skip
            src = f"{reg.host}/team/app:1"
            ours = [LAYERFORGE, "pull", src, "--out", str(work / "ours"), "--jobs", str(args.jobs)]
            theirs = ["skopeo", "copy", "--src-tls-verify=false", f"docker://{src}", f"oci:{work / 'theirs'}:1"]
            lf: list[float] = []
            sk: list[float] = []
            lf_cpu: list[float] = []
            sk_cpu: list[float] = []
            for _ in range(args.runs):
                lf.append(timed(ours, work / "ours", lf_cpu))
                sk.append(timed(theirs, work / "theirs", sk_cpu))
        finally:
            reg.stop()
    best_lf, best_sk = min(lf), min(sk)
    print(f"image: {args.layers} layers, {size / 1e6:.0f} MB of blobs; best of {args.runs}, empty layout per pull")
    print(f"{'':10} {'layerforge':>11} {'skopeo':>9} {'ratio':>7} {'target':>8}")
    print(f"{'pull':10} {best_lf:10.2f}s {best_sk:8.2f}s {best_sk / best_lf:6.2f}x {'>= 1.5x':>8}")
    print(f"{'':10} throughput {size / best_lf / 1e6:.0f} vs {size / best_sk / 1e6:.0f} MB/s")
    print(f"all runs: layerforge {', '.join(f'{t:.2f}' for t in lf)}; skopeo {', '.join(f'{t:.2f}' for t in sk)}")
    print(f"CPU s (user+sys), least: layerforge {min(lf_cpu):.2f}, skopeo {min(sk_cpu):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
