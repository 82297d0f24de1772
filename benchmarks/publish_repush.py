#!/usr/bin/env python3
"""A re-push through `pants publish` against the same re-push from the command line: the
tests' app image (nix_oci_image with an SBOM, two tags) packaged and published once to a
local docker-registry, then published again (nothing to send) N times with pantsd warm.

Rows: the whole `pants publish` (Pants' own start-up and graph included), the push process
Pants runs, replayed from its kept sandbox (`__run.sh`: the native command behind the tool
venv's shim), and `layerforge push` of the same layout from the command line; each with the
native answer and with `LAYERFORGE_PUSH_FAST_PATH=0` (the Python push). Best of N.
Usage: .venv/bin/python benchmarks/publish_repush.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.nix_support import IMAGES_NIX
from tests.pants_support import PantsRepo
from tests.registry_support import Registry
from tests.test_pants_backend import APP_BUILD

LAYERFORGE = str(Path(sys.executable).parent / "layerforge")
KEPT = re.compile(r"Preserving local process execution dir (\S+) for .*Push")


def best(runs: int, work: object) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-publish-") as tmp:
        work = Path(tmp)
        reg = Registry(work / "reg").start()
        try:
            rows: dict[str, float] = {}
            for mode in ("native", "python"):
                toml = f'[layerforge.registries.local]\naddress = "{reg.host}"\ndefault = true\n'
                repo = PantsRepo(work / f"repo-{mode}", toml)
                repo.write("images/images.nix", IMAGES_NIX.read_text())
                repo.write("images/BUILD", APP_BUILD.format(version="1.0"))
                passed = "'LAYERFORGE_CACHE_DIR'" + (", 'LAYERFORGE_PUSH_FAST_PATH=0'" if mode == "python" else "")
                env = {"LAYERFORGE_CACHE_DIR": str(work / f"cache-{mode}"), "PANTS_LAYERFORGE_ENV_VARS": f"+[{passed}]"}
                for goal in ("package", "publish"):
                    proc = repo.run(goal, "images:app", env=env, pantsd=True)
                    if proc.returncode != 0:
                        sys.exit(proc.stderr[-3000:])

                def publish() -> subprocess.CompletedProcess[str]:
                    proc = repo.run("publish", "images:app", env=env, pantsd=True)  # noqa: B023
                    if proc.returncode != 0 or "(unchanged)" not in proc.stdout + proc.stderr:
                        sys.exit(proc.stderr[-3000:])
                    return proc

                rows[f"pants publish, {mode}"] = best(args.runs, publish)
                # Once more, keeping the push's sandbox (PantsRepo.run removes them) to replay it.
                kept_run = subprocess.run(
                    [str(repo.pants), "--pantsd", "--keep-sandboxes=always", f"--local-store-dir={repo.store}",
                     f"--named-caches-dir={repo.named}", "publish", "images:app"],
                    cwd=repo.root, env=repo.env(env), capture_output=True, text=True, check=True, timeout=600,
                )  # fmt: skip
                kept = KEPT.findall(kept_run.stderr)
                if kept:
                    run_sh = Path(kept[-1]) / "__run.sh"
                    rows[f"the push process, {mode}"] = best(
                        args.runs,
                        lambda: subprocess.run(["bash", str(run_sh)], check=True, capture_output=True),  # noqa: B023
                    )
                    shutil.rmtree(kept[-1], ignore_errors=True)
                else:
                    print(f"no kept sandbox for the push ({mode}): {kept_run.stderr[-500:]}")
                layout = repo.root / "dist" / "images" / "app"
                cli_env = {**os.environ, **env}
                if mode == "python":
                    cli_env["LAYERFORGE_PUSH_FAST_PATH"] = "0"
                cli = [LAYERFORGE, "push", f"{layout}:1.0", f"{reg.host}/team/app:1.0", "--tag", "latest"]
                subprocess.run(cli, check=True, capture_output=True, env=cli_env)
                rows[f"layerforge push, {mode}"] = best(
                    args.runs,
                    lambda: subprocess.run(cli, check=True, capture_output=True, env=cli_env),  # noqa: B023
                )
                repo.stop_pantsd()
        finally:
            reg.stop()
        print(f"re-push with nothing to send, best of {args.runs}")
        for name, seconds in rows.items():
            print(f"{name:32} {seconds:8.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
