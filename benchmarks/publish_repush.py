#!/usr/bin/env python3
"""A re-push through `pants publish` against the same re-push from the command line: the
tests' app image (nix_oci_image with an SBOM, two tags) packaged and published once to a
local docker-registry, then published again (nothing to send) N times with pantsd warm.

Rows: the whole `pants publish` (Pants' own run included: the Nix evaluation, which runs on
every Pants run, and the graph), the push process Pants runs (the tool venv's native
command with the arguments publish gives it), and `layerforge push` of the same layout from
the command line; each with the native answer and with `LAYERFORGE_PUSH_FAST_PATH=0` (the
Python push). Best of N.
Usage: .venv/bin/python benchmarks/publish_repush.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
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
                # The push process alone: the tool venv's native command (what the process's
                # shim execs) with the argv publish gave it (from its receipt), in dist/, where
                # the layout sits at the same relative path as in the sandbox.
                receipts = sorted((work / f"cache-{mode}" / "push-receipts").glob("*.json"))
                venv_cmd = sorted(repo.named.glob("pex_root/venvs/**/bin/layerforge"), key=lambda p: p.stat().st_mtime)
                if mode == "native" and receipts and venv_cmd:
                    argv = [str(venv_cmd[-1]), "push", *json.loads(receipts[-1].read_text())["argv"]]
                    for m in ("native", "python"):
                        penv = {**os.environ, **env, **({"LAYERFORGE_PUSH_FAST_PATH": "0"} if m == "python" else {})}

                        def process() -> None:
                            subprocess.run(argv, cwd=repo.root / "dist", check=True, capture_output=True, env=penv)  # noqa: B023

                        rows[f"the push process, {m}"] = best(args.runs, process)
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
