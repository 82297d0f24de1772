#!/usr/bin/env python3
"""The three kinds of push, whole commands, on a local docker-registry: a first push (fresh
repository, every blob sent), a mount-only push (fresh repository of the same registry,
every blob mounted from the first), and a re-push (everything in place). For each:
`layerforge push` as users run it (the native command, which answers a re-push from the
receipt and execs Python otherwise), the Python push alone (`LAYERFORGE_PUSH_FAST_PATH=0`),
and `skopeo copy`; and the floor of any Python command (`python -c "import layerforge._native"`).
The numbers decide where the registry client lives (README, Architecture: registry client).
Best of N. Usage: .venv/bin/python benchmarks/push_kinds.py [--runs N] [--layers N] [--layer-kb N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.registry_support import FaultProxy, Registry

from benchmarks.push_side_by_side import make_image

LAYERFORGE = str(Path(sys.executable).parent / "layerforge")


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--layer-mb", type=int, default=2)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="added to every request by a proxy")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-push-kinds-") as tmp:
        work = Path(tmp)
        size = make_image(work / "layout", args.layers, args.layer_mb)
        src = f"{work / 'layout'}:bench"
        reg = Registry(work / "reg").start()
        proxy = FaultProxy(reg.host, latency=args.latency_ms / 1000).start() if args.latency_ms else None
        host = proxy.host if proxy else reg.host
        n = itertools.count()
        best: dict[str, list[float]] = {}

        def note(name: str, seconds: float) -> None:
            best.setdefault(name, []).append(seconds)

        try:
            for _ in range(args.runs):
                for tool in ("native", "python", "skopeo"):
                    env = {**os.environ, "LAYERFORGE_CACHE_DIR": str(work / f"cache-{next(n)}")}
                    if tool == "python":
                        env["LAYERFORGE_PUSH_FAST_PATH"] = "0"
                    first, mounted = f"{host}/first{next(n)}/app:1", f"{host}/mounted{next(n)}/app:1"
                    if tool == "skopeo":
                        copy = ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}"]
                        note("first skopeo", timed([*copy, f"docker://{first}"], env))
                        note("mount skopeo", timed([*copy, f"docker://{mounted}"], env))
                        note("re-push skopeo", timed([*copy, f"docker://{first}"], env))
                        continue
                    note(f"first {tool}", timed([LAYERFORGE, "push", src, first], env))
                    note(f"mount {tool}", timed([LAYERFORGE, "push", src, mounted], env))
                    note(f"re-push {tool}", timed([LAYERFORGE, "push", src, first], env))
                note("python floor", timed([sys.executable, "-c", "import layerforge._native"], dict(os.environ)))
        finally:
            if proxy:
                proxy.stop()
            reg.stop()
        where = f"+{args.latency_ms:g} ms per request" if args.latency_ms else "loopback"
        print(f"image: {args.layers} layers, {size / 1e6:.1f} MB of blobs; {where}; best of {args.runs}")
        print(f"{'push':10} {'layerforge':>11} {'Python push':>12} {'skopeo':>9}")
        for kind in ("first", "mount", "re-push"):
            row = [min(best[f"{kind} {tool}"]) for tool in ("native", "python", "skopeo")]
            print(f"{kind:10} {row[0]:10.4f}s {row[1]:11.4f}s {row[2]:8.4f}s")
        print(f"python floor (start-up and import of the native module): {min(best['python floor']):.4f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
