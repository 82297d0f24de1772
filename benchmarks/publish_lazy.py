#!/usr/bin/env python3
"""Publish without the bytes: what a second machine reads from the remote cache to publish an
image to a registry that already holds every layer but one, before (the plugin of --before,
main by default: every push gets the whole layout) and after (this tree's plugin: the push
gets the layout's documents and the layers the registry lacks).

Machine A packages one nix_oci_image of --layers data layers (copies of the host's static
busybox, each made different, --copies busyboxes each: about 1 MB compressed per copy) with
a BuildGrid remote cache, written. For each plugin, machine B (empty store and named caches,
`--cache-content-behavior=validate`) publishes to a fresh registry holding every layer but
one: once from cold, and once more (another fresh registry and store) after a dry-run publish
with this tree's plugin has put the tool and the documents in its store. Bytes B read from BuildGrid are counted on the wire
by a relay (tests/tcp_meter.py); the time is the `pants publish` run's (no pantsd).
Usage: .venv/bin/python benchmarks/publish_lazy.py [--layers N] [--copies N] [--before REV]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.buildgrid_support import buildgrid_server
from tests.helpers import image_parts
from tests.pants_support import REPO, PantsRepo
from tests.registry_support import Registry, upload_all_but
from tests.tcp_meter import TcpMeter

NIX = """
{{ busybox ? "/bin/busybox" }}:
let
  mk = name: script: derivation {{
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
    PATH = "/bin:/usr/bin";
  }};
  data = i: mk "data-${{toString i}}" ''
    ${{busybox}} mkdir -p $out/share
    for n in {seq}; do ${{busybox}} cat ${{busybox}} >> $out/share/data.bin; ${{busybox}} echo ${{toString i}}-$n >> $out/share/data.bin; done
  '';
  all = builtins.genList data {layers};
in {{
  app = mk "bench-app-1" ''
    ${{busybox}} mkdir -p $out
    ${{busybox}} echo ${{builtins.concatStringsSep " " (map toString all)}} > $out/refs
  '';
}}
"""
BUILD = """
nix_oci_image(name="app", nix_file="images.nix", attr="app", layering="per-path", repository="team/app",
              image_tags=["1.0"], max_layers=100)
"""


def registries(host: str) -> str:
    return "--layerforge-registries=" + repr({"target": {"address": host, "default": True}})


def checked(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        sys.exit(proc.stderr[-4000:])
    return proc


def held_registry(root: Path, layout: Path, layers: list[tuple[int, str]], missing: str) -> Registry:
    reg = Registry(root).start()
    upload_all_but(reg.host, "team/app", layout, layers, missing)
    return reg


def plugin_of(rev: str, dest: Path) -> None:
    """The backend as it is at ``rev`` (git archive of pants-plugins/)."""
    shutil.rmtree(dest)
    data = subprocess.run(["git", "archive", rev, "pants-plugins"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest.parent, filter="data")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--before", default="main")
    args = ap.parse_args()
    seq = " ".join(str(n) for n in range(args.copies))
    with tempfile.TemporaryDirectory(prefix="lf-publish-lazy-") as tmp:
        work = Path(tmp)
        with buildgrid_server(work / "buildgrid") as address:
            meter = TcpMeter(address.removeprefix("grpc://")).start()
            try:
                remote = [f"--remote-store-address=grpc://{meter.address}", "--remote-instance-name=",
                          "--remote-cache-read"]  # fmt: skip
                lazy = [*remote, "--no-remote-cache-write", "--cache-content-behavior=validate"]
                repos = {}
                for name in ("before", "after"):
                    repos[name] = PantsRepo(work / f"repo-{name}")
                    repos[name].write("images/images.nix", NIX.format(seq=seq, layers=args.layers))
                    repos[name].write("images/BUILD", BUILD)
                plugin_of(args.before, repos["before"].root / "pants-plugins")
                a = repos["after"]
                checked(a.run(*remote, "--remote-cache-write", "package", "images:app", store=work / "store-a",
                              named=work / "named-a"))  # fmt: skip
                saved = work / "layout"
                shutil.copytree(a.root / "dist" / "images" / "app", saved)
                shutil.rmtree(a.root / "dist")
                _, manifest, _ = image_parts(saved, "1.0")
                layers = sorted(((d["size"], d["digest"]) for d in manifest["layers"]), reverse=True)
                missing_size, missing = layers[len(layers) // 2]
                total = sum(s for s, _ in layers)
                print(
                    f"{len(layers)} layers, {total / 1e6:.1f} MB; the registry lacks one of {missing_size / 1e6:.2f} MB"
                )
                rows = []
                for name, repo in repos.items():
                    # The plugin's own processes (its remote cache entries may differ): package once, written.
                    checked(repo.run(*remote, "--remote-cache-write", "package", "images:app",
                                     store=work / f"store-{name}-pkg", named=work / f"named-{name}-pkg"))  # fmt: skip
                    shutil.rmtree(repo.root / "dist")
                    b = {"store": work / f"store-{name}-b", "named": work / f"named-{name}-b"}
                    for case in ("cold store", "tool already local"):
                        reg = held_registry(work / f"reg-{name}-{case[:4]}", saved, layers, missing)
                        try:
                            if case == "tool already local":
                                b = {"store": work / f"store-{name}-c", "named": work / f"named-{name}-c"}
                                # This tree's dry run (the old one reads the whole layout): the
                                # tool's and the documents' digests are the same for both plugins.
                                checked(a.run(*lazy, registries(reg.host), "--layerforge-publish-dry-run",
                                              "publish", "images:app", **b))  # fmt: skip
                            meter.reset()
                            t = time.perf_counter()
                            checked(repo.run(*lazy, registries(reg.host), "publish", "images:app", **b))
                            seconds = time.perf_counter() - t
                            rows.append((name, case, meter.down, seconds))
                        finally:
                            reg.stop()
            finally:
                meter.stop()
    print(f"{'plugin':8} {'machine B':20} {'read from the remote cache':>28} {'pants publish':>14}")
    for name, case, read, seconds in rows:
        print(f"{name:8} {case:20} {read / 1e6:>25.2f} MB {seconds:>12.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
