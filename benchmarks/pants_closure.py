"""`pants package` of the text closure (benchmarks/nix/textclosure.nix) with a cold local
cache, side by side with `layerforge nix-image` on the same closure (issue 16, goal 3).

A temporary build root with this repository's pants.toml and one nix_oci_image target over
the closure (one layer per store path, as the CLI is asked). Each Pants run gets a fresh,
private local store (`--local-store-dir`: the shared ~/.cache/pants is never touched) and
`--no-pantsd`; named caches (the tool's venv) stay warm, as on a developer's machine. The CLI
runs with `--no-cache` into a fresh directory. Each round runs, in turn: Pants cold, a no-op
Pants run on that store (start-up and the Nix evaluation: what no cache can skip), Pants cold
with every layer handed to the Python tool (`LAYERFORGE_NATIVE_NIX_LAYER=0`, the layer
processes as they were before the native command built them), and the CLI. Medians of wall
and CPU seconds (the command and every process it waited for) are printed.

    .venv/bin/python benchmarks/pants_closure.py --runs 5

With ``--pantsd`` the runs share one warm pantsd (started by a warm-up run, stopped by its
PID at the end) and one local store, as on a developer's machine, and go through Pants'
native client as ./pants runs them: Pants' start-up and the tool's PEX are paid once. Each round's cold runs still run every layerforge process (plan,
layers, assembly): the round's value of a variable passed to them
(`[layerforge].env_vars`, ``LAYERFORGE_BENCH_ROUND``) is in every process's key, so none is a
cache hit. The no-op is the same run again (the Nix evaluation, which no cache skips).

    .venv/bin/python benchmarks/pants_closure.py --runs 5 --pantsd
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pants_support import REPO, PantsRepo

CLOSURE = REPO / "benchmarks" / "nix" / "textclosure.nix"
LAYERFORGE = str(REPO / ".venv" / "bin" / "layerforge")
BUILD = """
nix_oci_image(
    name="text",
    nix_file="textclosure.nix",
    attr="textapp",
    layering="per-path",
    max_layers=100,
)
"""


#: CPU seconds (user + system) of the last timed command and the processes it waited for.
CPU: list[float] = []


def timed(argv: list[str], **kw: object) -> float:
    """Wall seconds of the command; its CPU seconds are appended to :data:`CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False, **kw)  # type: ignore[call-overload]
    took = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return took


def pantsd_pid(root: Path) -> int:
    """The PID of the pantsd serving ``root`` (from the PID file it writes there)."""
    (pid_file,) = (root / ".pids").glob("*/pantsd/pid")
    return int(pid_file.read_text().strip())


def daemon_cpu(pid: int | None) -> float:
    """CPU seconds so far of pantsd ``pid`` and the processes it waited for (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pantsd", action="store_true", help="one warm pantsd and local store for every run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lf-pants-closure-"))
    repo = PantsRepo(work / "root")
    try:
        shutil.copy(CLOSURE, repo.root / "textclosure.nix")
        repo.write("BUILD", (REPO / "BUILD").read_text() + BUILD)
        env = repo.env()
        pants = [*repo.client(args.pantsd), f"--named-caches-dir={work / 'named'}"]
        cli = [LAYERFORGE, "nix-image", "--nix-file", str(CLOSURE), "--attr", "textapp", "--layering", "per-path",
               "--max-layers", "100", "--no-cache"]  # fmt: skip
        # one store for every pantsd run (another store dir would restart pantsd)
        warm = [f"--local-store-dir={work / 'warm'}"]
        if args.pantsd:
            pants, warm = [*pants, *warm], []
        # warm-up: Nix builds the closure, the tool's venv lands in the named caches (and pantsd starts)
        timed([*pants, *warm, "package", "//:text"], cwd=repo.root, env=env)
        daemon = pantsd_pid(repo.root) if args.pantsd else None
        timed([*cli, "--out", str(work / "cli-warm")], env=env)
        # the same Pants runs with every layer built by the Python tool (the native command
        # told to hand nix-layer to Python: the processes as they were before it built layers)
        python_layers = ["--layerforge-env-vars=+['LAYERFORGE_NATIVE_NIX_LAYER=0']"]
        times: dict[str, list[float]] = {k: [] for k in ("pants", "pants-python-layers", "cli", "no-op")}
        cpu: dict[str, list[float]] = {k: [] for k in times}
        for i in range(args.runs):
            for kind, extra in (("pants", []), ("pants-python-layers", python_layers)):
                store = work / f"store{i}{kind}"
                shutil.rmtree(repo.root / "dist", ignore_errors=True)
                if args.pantsd:
                    cold = [f"--layerforge-env-vars=+['LAYERFORGE_BENCH_ROUND={i}{kind}']"]
                else:
                    cold = [f"--local-store-dir={store}"]
                argv = [*pants, *extra, *cold, "package", "//:text"]
                for k in (kind, "no-op") if kind == "pants" else (kind,):
                    before = daemon_cpu(daemon)
                    times[k].append(timed(argv, cwd=repo.root, env=env))
                    cpu[k].append(CPU[-1] + daemon_cpu(daemon) - before)
                shutil.rmtree(store, ignore_errors=True)
            times["cli"].append(timed([*cli, "--out", str(work / f"cli{i}")], env=env))
            cpu["cli"].append(CPU[-1])
            shutil.rmtree(work / f"cli{i}")
            print(f"run {i + 1}: " + ", ".join(f"{k} {times[k][-1]:.2f} s ({cpu[k][-1]:.1f} s cpu)" for k in times)
                  + f", load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        print("medians: " + ", ".join(f"{k} {med[k]:.2f} s ({med_cpu[k]:.1f} s cpu)" for k in med))
        for kind in ("pants", "pants-python-layers"):
            print(f"{kind} / cli: {med[kind] / med['cli']:.2f}x wall, {med_cpu[kind] / med_cpu['cli']:.2f}x cpu; "
                  f"minus the no-op: {(med[kind] - med['no-op']) / med['cli']:.2f}x wall")  # fmt: skip
    finally:
        if args.pantsd:
            repo.stop_pantsd()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
