#!/usr/bin/env python3
"""`pants package` of three nix_oci_image targets (the benchmarks/nix/family.nix images,
~380 MB closures each) in a temporary build root, as CI machines meet it:

1. cold: a fresh machine (a new `salt`, so Nix has built none of the closures), empty local
   store and named caches, empty BuildGrid remote cache: every closure is built by Nix, the
   tool PEX and every layer built and uploaded;
2. cold again without the remote cache, the closures now in the Nix store (layerforge's own
   work: plans, layers, assembly);
3. warm remote: a fresh local store and named caches, the remote cache from run 1 (no Nix
   build, no layer build: everything comes from the cache);
4. no-op: pantsd running and warm, nothing changed, on these targets and on the repository's
   examples/ (every image kind).

Targets: warm remote >= 5x faster than cold; no-op < 2 s with pantsd.
Usage: .venv/bin/python benchmarks/pants_cache.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.buildgrid_support import buildgrid_server
from tests.pants_support import REPO, PantsRepo

FAMILY = Path(__file__).parent / "nix" / "family.nix"
SALT = str(time.time_ns())
BUILD = "\n".join(
    f'nix_oci_image(name="app{k}", nix_file="family.nix", attr="app{k}", argstrs={{"salt": "{SALT}"}}, '
    f'repository="family/app{k}")'
    for k in range(3)
)


def timed(repo: PantsRepo, *args: str, **kw: Path) -> tuple[float, list[str]]:
    t = time.perf_counter()
    proc = repo.run(*args, **kw)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return elapsed, PantsRepo.executed(proc)


def noop(repo: PantsRepo, work: Path, spec: str) -> float:
    pantsd = [*repo.client(True), f"--local-store-dir={work / 's1'}", f"--named-caches-dir={repo.named}"]
    env = repo.env()
    subprocess.run([*pantsd, "package", spec], cwd=repo.root, env=env, check=True, capture_output=True)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([*pantsd, "package", spec], cwd=repo.root, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lf-pants-bench-") as tmp:
        work = Path(tmp)
        repo = PantsRepo(work / "repo")
        repo.write("family/family.nix", FAMILY.read_text())
        repo.write("family/BUILD", BUILD + "\n")
        shutil.copytree(REPO / "examples", repo.root / "examples")
        with buildgrid_server(work / "bg") as address:
            remote = ["--remote-cache-read", "--remote-cache-write", "--cache-content-behavior=validate",
                      f"--remote-store-address={address}", "--remote-instance-name="]  # fmt: skip
            # Warm Pants' own tool caches (the layerforge PEX) outside the measured runs.
            repo.run("--version")
            cold, ran_cold = timed(repo, *remote, "package", "family::", store=work / "s1", named=work / "n1")
            shutil.rmtree(repo.root / "dist")
            built, ran_built = timed(repo, "package", "family::", store=work / "s0", named=work / "n0")
            shutil.rmtree(repo.root / "dist")
            warm, ran_warm = timed(repo, *remote, "package", "family::", store=work / "s2", named=work / "n2")
        noop_family = noop(repo, work, "family::")
        noop_examples = noop(repo, work, "examples::")
        repo.stop_pantsd()
    print(f"cold, fresh machine (Nix builds the closures), empty caches {cold:6.1f} s  ({len(ran_cold)} processes)")
    print(f"cold, closures already in the Nix store, no remote cache    {built:6.1f} s  ({len(ran_built)} processes)")
    print(
        f"warm remote cache, fresh local store and named caches      {warm:6.1f} s  ({len(ran_warm)} processes)"
        f"  -> {cold / warm:.1f}x faster than cold, {built / warm:.1f}x than cold with the closures built"
        " (target >= 5x)"
    )
    print(f"no-op package with pantsd: family:: {noop_family:.2f} s, examples:: {noop_examples:.2f} s  (target < 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
