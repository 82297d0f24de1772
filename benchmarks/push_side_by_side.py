#!/usr/bin/env python3
"""Pushing a 30-layer, >= 300 MB image to a local docker-registry: layerforge push vs
`skopeo copy oci:... docker://...`, then the re-push when everything is already there.

The re-push runs the `layerforge push` command as a user would: the native command answers
it (every tag already names the image) without starting Python. Each first push goes to a
fresh repository (the registry stores blobs per repository, so
both tools send every byte); layerforge's known-blob memory is disabled so it cannot mount.
Best of N, ratios printed. Usage: .venv/bin/python benchmarks/push_side_by_side.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.registry_support import FaultProxy, Registry

from layerforge._native import LayerSpec
from layerforge.layers.build import build_layers
from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.model.image_config import ImageConfig
from layerforge.model.platform import Platform
from layerforge.model.reference import parse_layout_ref
from layerforge.registry.client import RegistryClient
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.push import push_image
from layerforge.registry.reference import parse_image_name

LAYERFORGE = str(Path(sys.executable).parent / "layerforge")


def make_image(layout_dir: Path, layers: int, layer_mb: int) -> int:
    specs = []
    for i in range(layers):
        spec = LayerSpec()
        spec.add_file(f"/layer{i}/data.bin", os.urandom(layer_mb << 20))
        specs.append(spec)
    with open_for_write(layout_dir) as layout:
        built = build_layers(layout, specs, compression="zstd", level=1)
        config = ImageConfig(Platform("amd64", "linux"), "1970-01-01T00:00:01Z", tuple(b.diff_id for b in built))
        write_image(layout, config, [b.descriptor for b in built], annotations={}, ref="bench")
    return sum(b.descriptor.size for b in built)


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def push_ours(src: str, target: str, cache: Path) -> float:
    return timed([LAYERFORGE, "push", src, target], {**os.environ, "LAYERFORGE_CACHE_DIR": str(cache)})


def push_skopeo(src: str, target: str) -> float:
    return timed(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}", f"docker://{target}"], dict(os.environ))


def repush_api(src: str, target: str) -> float:
    """The same re-push from Python (`layerforge.registry.push_image`), as a CI script or a
    long-lived process pushing many images calls it: no interpreter start-up."""
    ref = parse_layout_ref(src)
    name = parse_image_name(target)
    t = time.perf_counter()
    client = RegistryClient(name.registry, credentials=None, insecure=False)
    try:
        result = push_image(OciLayout.open(ref.path), ref.ref, name, client, known=KnownBlobs(None))
    finally:
        client.close()
    elapsed = time.perf_counter() - t
    assert all(action == "unchanged" for action in result.tags.values()), result.tags
    return elapsed


def measure(work: Path, src: str, runs: int, latency: float) -> dict[str, float]:
    """Best first push (each on a fresh registry: nothing to skip or mount) and best re-push."""
    results: dict[str, list[float]] = {"ours": [], "skopeo": [], "re_ours": [], "re_skopeo": [], "re_api": []}
    for i in range(runs):
        for tool in ("ours", "skopeo"):
            reg = Registry(work / f"reg-{latency}-{tool}-{i}").start()
            proxy = FaultProxy(reg.host, latency=latency).start() if latency else None
            host = proxy.host if proxy else reg.host
            try:
                target = f"{host}/team/app:1"
                if tool == "ours":
                    results["ours"].append(push_ours(src, target, work / f"cache-{latency}-{i}"))
                    results["re_ours"].append(push_ours(src, target, work / f"cache-{latency}-{i}"))
                    results["re_api"].append(min(repush_api(src, target) for _ in range(5)))
                else:
                    results["skopeo"].append(push_skopeo(src, target))
                    results["re_skopeo"].append(push_skopeo(src, target))
            finally:
                if proxy:
                    proxy.stop()
                reg.stop()
    return {k: min(v) for k, v in results.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--layer-mb", type=int, default=11)
    ap.add_argument("--latency-ms", type=float, default=10.0, help="added per request in the second setting")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-push-bench-") as tmp:
        work = Path(tmp)
        size = make_image(work / "layout", args.layers, args.layer_mb)
        src = f"{work / 'layout'}:bench"
        print(
            f"image: {args.layers} layers, {size / 1e6:.0f} MB of blobs; best of {args.runs}, fresh registry per push"
        )
        print(f"\n{'setting':28} {'layerforge':>11} {'skopeo':>9} {'ratio':>7} {'target':>8}")
        for latency in (0.0, args.latency_ms / 1000):
            r = measure(work, src, args.runs, latency)
            label = "loopback" if not latency else f"+{args.latency_ms:.0f} ms per request"
            print(
                f"{'first push, ' + label:28} {r['ours']:10.2f}s {r['skopeo']:8.2f}s {r['skopeo'] / r['ours']:6.2f}x {'>= 1.5x':>8}"
            )
            print(
                f"{'re-push, ' + label:28} {r['re_ours']:10.4f}s {r['re_skopeo']:8.2f}s "
                f"{r['re_skopeo'] / r['re_ours']:6.1f}x {'>= 10x':>8}"
            )
            print(
                f"{'re-push from Python (API)':28} {r['re_api']:10.3f}s {r['re_skopeo']:8.2f}s "
                f"{r['re_skopeo'] / r['re_api']:6.1f}x {'>= 10x':>8}"
            )
            print(f"{'':28} throughput {size / r['ours'] / 1e6:.0f} vs {size / r['skopeo'] / 1e6:.0f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
