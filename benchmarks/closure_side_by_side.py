#!/usr/bin/env python3
"""A realistic closure, side by side: nixpkgs dockerTools against layerforge.

The closure is benchmarks/nix/textclosure.nix (55 store paths, ~700 MB, ~45,000 mostly small
text files, built by real Nix from the host's own files), one layer per store path in both
tools, dependencies first.

1. closure -> docker-archive: dockerTools' `stream_layered_image.py CONF > image.tar` against
   `layerforge nix-image --format docker-archive`;
2. closure -> image in a loopback registry (gzip):
   `stream_layered_image.py CONF > image.tar && skopeo copy docker-archive:image.tar docker://...`
   (skopeo cannot read a docker-archive from a pipe)
   against `layerforge nix-image` (gzip layers) followed by `layerforge push`.

Each pair runs A, B, A, B, ... in one process so both see the same machine; every push goes
to a fresh docker-registry on 127.0.0.1 (no blob to skip or mount), layerforge's known-blobs
memory disabled. Prints every run, medians, the ratio of medians, the machine's load average
and the bytes each tool stored.

The peer script is nixpkgs' pkgs/build-support/docker/stream_layered_image.py, taken as an
argument: it is not part of this repository.
Usage: .venv/bin/python benchmarks/closure_side_by_side.py PATH/TO/stream_layered_image.py [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.registry_support import Registry

from layerforge.images.nix.closure import Nix
from layerforge.images.nix.layering import plan_layers

CLOSURE = Path(__file__).parent / "nix" / "textclosure.nix"
NIX_ENV = {**os.environ, "NIX_CONFIG": "sandbox = false\nbuild-users-group =\n"}
LAYERFORGE = str(Path(sys.executable).parent / "layerforge")
EPOCH = "1970-01-01T00:00:01+00:00"


def build_closure() -> str:
    out = subprocess.run(
        ["nix-build", str(CLOSURE), "-A", "textapp", "--no-out-link"],
        capture_output=True, text=True, env=NIX_ENV, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def peer_conf(work: Path, root: str, layers: list[list[str]]) -> Path:
    """dockerTools' configuration for the same layers; the customisation layer is empty."""
    custom = work / "customisation"
    custom.mkdir()
    empty_tar = bytes(10240)  # what `tar -cf - -T /dev/null` writes
    (custom / "layer.tar").write_bytes(empty_tar)
    (custom / "checksum").write_text(hashlib.sha256(empty_tar).hexdigest())
    conf = {
        "architecture": "amd64",
        "config": {"Entrypoint": [f"{root}/bin/textapp"]},
        "created": EPOCH,
        "mtime": EPOCH,
        "uid": 0,
        "gid": 0,
        "uname": "root",
        "gname": "root",
        "store_dir": "/nix/store",
        "from_image": None,
        "repo_tag": "textapp:1.0",
        "store_layers": layers,
        "customisation_layer": str(custom),
    }
    path = work / "conf.json"
    path.write_text(json.dumps(conf))
    return path


def run(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    return time.perf_counter() - t


def layerforge_argv(root: str, out: Path, *extra: str) -> list[str]:
    return [LAYERFORGE, "nix-image", "--store-path", root, "--out", str(out), "--layering", "per-path",
            "--max-layers", "100", "--no-cache", "--entrypoint", f"{root}/bin/textapp", *extra]  # fmt: skip


def layer_bytes_in_registry(host: str, repo: str) -> int:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repo}:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return sum(int(layer["size"]) for layer in json.loads(raw)["layers"])


def side_by_side(
    name: str, runs: int, peer: Callable[[int], float], ours: Callable[[int], float], clean: Callable[[], None]
) -> tuple[float, float]:
    a, b = [], []
    for i in range(runs):
        a.append(peer(i))
        clean()
        b.append(ours(i))
        clean()
        print(f"  {name} run {i + 1}: peer {a[-1]:6.2f} s  layerforge {b[-1]:6.2f} s  ({a[-1] / b[-1]:.2f}x)")
    pa, pb = statistics.median(a), statistics.median(b)
    print(
        f"  {name}: median peer {pa:.2f} s, layerforge {pb:.2f} s -> {pa / pb:.2f}x (min {min(a):.2f} / {min(b):.2f} s)"
    )
    return pa, pb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "stream_layered_image", type=Path, help="nixpkgs' pkgs/build-support/docker/stream_layered_image.py"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=("archive", "registry"), help="run one of the two comparisons")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new one under $TMPDIR)")
    args = ap.parse_args()
    script = args.stream_layered_image.resolve()
    if not script.is_file():
        print(f"stream_layered_image: {script} is not a file", file=sys.stderr)
        return 2

    root = build_closure()
    closure = Nix(echo_build_log=False).closure([root])
    layers = [sorted(g.paths) for g in plan_layers(closure, strategy="per-path", budget=100)]
    files = sum(len(fs) for p in closure.infos for _, _, fs in os.walk(p))
    print(f"closure of {Path(root).name}: {len(closure.infos)} store paths, "
          f"{closure.total_nar_size() / 1e6:.0f} MB (narSize), {files} files; {len(layers)} layers")  # fmt: skip
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    work = Path(tempfile.mkdtemp(prefix="lf-closure-bench-", dir=args.work))
    out = work / "out"

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    try:
        conf = peer_conf(work, root, layers)
        python = shutil.which("python3") or sys.executable
        clean()
        results: dict[str, tuple[float, float]] = {}
        if args.only in (None, "archive"):
            print("\nclosure -> docker-archive")

            def peer_archive(i: int) -> float:
                return run(["sh", "-c", f'exec "{python}" "{script}" "{conf}" > "{out}/peer.tar"'])

            def ours_archive(i: int) -> float:
                return run(layerforge_argv(root, out / "lf.tar", "--format", "docker-archive"))

            results["archive"] = side_by_side("archive", args.runs, peer_archive, ours_archive, clean)

        if args.only in (None, "registry"):
            print("\nclosure -> loopback registry (gzip)")
            sizes: dict[str, int] = {}
            registries: list[Registry] = []

            def fresh_registry(i: int, who: str) -> Registry:
                reg = Registry(work / f"registry-{who}-{i}").start()
                registries.append(reg)
                return reg

            def peer_push(i: int) -> float:
                reg = fresh_registry(i, "peer")
                try:
                    t = run(["sh", "-c", f'"{python}" "{script}" "{conf}" > "{out}/peer.tar" && skopeo copy -q '
                             f'--dest-tls-verify=false "docker-archive:{out}/peer.tar" "docker://{reg.host}/peer:1"'])  # fmt: skip
                    sizes["peer"] = layer_bytes_in_registry(reg.host, "peer")
                finally:
                    reg.stop()
                    shutil.rmtree(reg.root, ignore_errors=True)
                return t

            def ours_push(i: int) -> float:
                reg = fresh_registry(i, "lf")
                cache = work / f"lf-cache-{i}"
                env = {**os.environ, "LAYERFORGE_CACHE_DIR": str(cache)}
                try:
                    t = run(["sh", "-c", " ".join(f"'{a}'" for a in layerforge_argv(root, out / "layout", "--tag", "1"))
                             + f" && '{LAYERFORGE}' push '{out}/layout:1' '{reg.host}/lf:1'"], env)  # fmt: skip
                    sizes["lf"] = layer_bytes_in_registry(reg.host, "lf")
                finally:
                    reg.stop()
                    shutil.rmtree(reg.root, ignore_errors=True)
                    shutil.rmtree(cache, ignore_errors=True)
                return t

            results["registry"] = side_by_side("registry", args.runs, peer_push, ours_push, clean)
            print(f"  layer bytes stored: skopeo {sizes['peer']:,}, layerforge {sizes['lf']:,} "
                  f"({100 * (sizes['lf'] / sizes['peer'] - 1):+.2f}%)")  # fmt: skip

        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"\n{'path':<36} {'peer':>8} {'layerforge':>11} {'ratio':>7}")
        labels = {"archive": "closure -> docker-archive", "registry": "closure -> registry (gzip)"}
        for key, (pa, pb) in results.items():
            print(f"{labels[key]:<36} {pa:7.2f}s {pb:10.2f}s {pa / pb:6.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
