"""The monorepo shape of issue 33 (many nix_oci_image targets over one shared runtime),
generated from the host's own files, and Pants side by side with the CLI on it, in one run.

The shape (benchmarks/monorepo_shape.py): P runtime packages (default 40, ~18 MB of small
files each), N services (default 12), each using all but a few leaf packages plus its own data
and app; one nix_oci_image per service, one layer per store path (``layering="per-path"``).
``--scale`` multiplies the sizes (0.1 for a quick run). A temporary build root gets this
repository's pants.toml and plugin (tests/pants_support.PantsRepo); Nix builds every store path
of both versions of the bumped package first, outside the timings.

Rows, each timed once (wall seconds), Pants then the CLI:

* cold: ``pants package ::`` with a fresh local store (``--local-store-dir``) and, with
  ``--pantsd`` (the default), pantsd up: a warm-up packages a small image of
  examples/nix/hello.nix in the same build root first (pantsd starts, the tool's PEX is built),
  then its target is removed. The CLI: ``layerforge nix-image`` of each service in turn, one
  fresh ``--cache-dir`` for all of them.
* one leaf package bumped (bump.nix: its version 1.0 -> 1.1): ``pants package ::`` again; the
  CLI builds the N images again with its cache.
* no-op: the same again.
* with ``--import-cost``, no-op when the Nix file imports something costing ~1 s to evaluate
  (cost.nix, calibrated on this machine first): Pants, the CLI, and for reference one
  ``nix-instantiate`` of all N attributes. The Pants row is the second run after cost.nix was
  written; the first one's time and evaluations are in the row's note.

With ``--flake`` the targets read the services as outputs of a flake beside the Nix file
(``flake=".#svcN"``, its four files as ``flake_sources``): the same derivations, so the same
images; the CLI still builds from the Nix file.

With pantsd, the first run after a file changed (the bump row, and the run right after
cost.nix was written) evaluates each target twice: once against the files as they were before
the change, then again as they are (pantsd learns of the change during that run). The
evaluations column shows it; nothing here waits or retries around it.

For Pants each row also shows the layerforge processes it executed (evaluations, plans, layer
processes, assemblies, build-record processes: read from ``--keep-sandboxes=always``, as
tests/pants_support does), and the store-path layers the layer processes built, read from
each layer process's own ``nix-layer --job`` document (benchmarks/kept_sandboxes.py), against
the distinct store paths of the N images (cold) or the store paths the bump changed.

    /path/to/.venv/bin/python benchmarks/monorepo.py                    # the issue's shape
    /path/to/.venv/bin/python benchmarks/monorepo.py --scale 0.1 --services 4 --import-cost

The CLI is the ``layerforge`` beside the Python running this (``--layerforge``); Pants is this
repository's bootstrapped ./pants. ``--generate DIR`` only writes the shape (the Nix file,
bump.nix, cost.nix and a BUILD file of the targets) into DIR; ``--bump DIR`` bumps the leaf
package of a shape written there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pants_support import REPO, PantsRepo

from benchmarks.kept_sandboxes import Executed, executed
from benchmarks.monorepo_shape import (
    BUMP_FILE,
    COST_FILE,
    FLAKE_FILE,
    MAX_LAYERS,
    NIX_FILE,
    Shape,
    build_file,
    bump_nix,
    calibrate_cost,
    cost_nix,
    flake_build_file,
    flake_nix,
    generate,
)

MB = 1_000_000
HELLO = REPO / "examples" / "nix" / "hello.nix"
WARMUP = 'nix_oci_image(name="hello", nix_file="hello.nix", attr="hello")\n'
VERSIONS = ("1.0", "1.1")
#: What `layerforge nix-image` says of its layer cache.
_CLI_LAYERS = re.compile(r"layer cache: (\d+) reused, (\d+) built")


@dataclass
class Row:
    name: str
    pants: float | None = None
    cli: float | None = None
    executed: Executed | None = None
    #: The CLI's layers from its cache and those it built.
    cli_layers: tuple[int, int] | None = None
    note: str = ""


@dataclass
class Report:
    shape: Shape
    #: The store paths of each image, before and after the bump.
    closures: dict[str, list[set[str]]]
    sizes: dict[str, int]
    rows: list[Row] = field(default_factory=list)
    pantsd_restarts: int = 0

    def distinct(self, version: int) -> set[str]:
        return set().union(*(c[version] for c in self.closures.values()))


def timed(argv: Sequence[str], check: bool = True, **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of the command and its result (a failure stops the benchmark unless not
    ``check``)."""
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False, **kw)  # type: ignore[call-overload]
    took = time.monotonic() - start
    if check:
        checked(proc)
    return took, proc


def checked(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(proc.args[:4])} ... failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def nix_closures(root: Path, shape: Shape, env: dict[str, str]) -> dict[str, set[str]]:
    """Build every service with Nix (outside the timings) and read each one's closure."""
    attrs = [a for attr in shape.attrs() for a in ("-A", attr)]
    timed(["nix-build", f"./{NIX_FILE}", *attrs, "--no-out-link"], cwd=root, env=env)
    out = {}
    for attr in shape.attrs():
        _, built = timed(["nix-build", f"./{NIX_FILE}", "-A", attr, "--no-out-link"], cwd=root, env=env)
        _, refs = timed(["nix-store", "--query", "--requisites", built.stdout.strip()], env=env)
        out[attr] = set(refs.stdout.split())
    return out


def nar_sizes(paths: set[str], env: dict[str, str]) -> dict[str, int]:
    ordered = sorted(paths)
    _, proc = timed(["nix-store", "--query", "--size", *ordered], env=env)
    return dict(zip(ordered, map(int, proc.stdout.split())))


def pantsd_pid(root: Path) -> int | None:
    for pid_file in (root / ".pids").glob("*/pantsd/pid"):
        return int(pid_file.read_text().strip())
    return None


class Runs:
    """Pants and the CLI in the benchmark's build root."""

    def __init__(self, repo: PantsRepo, work: Path, pantsd: bool, layerforge: str) -> None:
        self.repo, self.work, self.layerforge = repo, work, layerforge
        self.env = repo.env()
        self.pants = [
            *repo.client(pantsd), "--keep-sandboxes=always",
            f"--local-store-dir={work / 'store'}", f"--named-caches-dir={work / 'named'}",
        ]  # fmt: skip
        self.pid: int | None = None
        self.restarts = 0
        self.logs = work / "logs"
        self.logs.mkdir()

    def write(self, name: str, content: str) -> None:
        """Change a file of the build root (as an edit would, before a run)."""
        (self.repo.root / name).write_text(content)

    def package(self, *specs: str) -> tuple[float, Executed]:
        took, proc = timed([*self.pants, "package", *specs], check=False, cwd=self.repo.root, env=self.env)
        if proc.returncode != 0:
            executed(proc.stderr)  # remove the sandboxes it kept
            checked(proc)
        log = self.logs / f"{len(list(self.logs.iterdir())):02d}-package.log"
        log.write_text(proc.stderr)
        pid = pantsd_pid(self.repo.root)
        if self.pid is not None and pid != self.pid:
            self.restarts += 1
        self.pid = pid
        return took, executed(proc.stderr)

    def cli(self, attrs: list[str], cache: Path, out: Path) -> tuple[float, tuple[int, int]]:
        """Wall seconds of ``layerforge nix-image`` of each attribute in turn into ``out``, with
        ``cache``, and the layers its cache gave and those it built (as each run says)."""
        total, reused, built = 0.0, 0, 0
        for attr in attrs:
            argv = [self.layerforge, "nix-image", "--nix-file", str(self.repo.root / NIX_FILE), "--attr", attr,
                    "--layering", "per-path", "--max-layers", str(MAX_LAYERS), "--cache-dir", str(cache),
                    "--out", str(out / attr)]  # fmt: skip
            took, proc = timed(argv, env=self.env)
            m = _CLI_LAYERS.search(proc.stderr)
            if not m:
                raise SystemExit(f"layerforge nix-image of {attr} did not say what its layer cache did:\n{proc.stderr}")
            total, reused, built = total + took, reused + int(m.group(1)), built + int(m.group(2))
        shutil.rmtree(out)  # N layouts of the whole images: gigabytes at full scale
        return total, (reused, built)

    def instantiate(self, attrs: list[str]) -> float:
        """One ``nix-instantiate`` of all the attributes."""
        argv = ["nix-instantiate", f"./{NIX_FILE}", *(a for attr in attrs for a in ("-A", attr))]
        return timed(argv, cwd=self.repo.root, env=self.env)[0]


def run(opts: argparse.Namespace) -> Report:
    shape = shape_of(opts)
    work = Path(tempfile.mkdtemp(prefix="lf-monorepo-"))
    repo = PantsRepo(work / "root")
    runs = Runs(repo, work, opts.pantsd, opts.layerforge)
    root, attrs = repo.root, shape.attrs()
    try:
        generate(root, shape)
        if opts.flake:
            system = subprocess.run(["nix-instantiate", "--eval", "-E", "builtins.currentSystem"],
                                    capture_output=True, text=True, env=runs.env, check=True).stdout  # fmt: skip
            repo.write(FLAKE_FILE, flake_nix(json.loads(system)))
        targets = flake_build_file(shape) if opts.flake else build_file(shape)
        repo.write("BUILD", (REPO / "BUILD").read_text() + targets)
        closures: dict[str, list[set[str]]] = {a: [] for a in attrs}
        for version in VERSIONS:
            (root / BUMP_FILE).write_text(bump_nix(version))
            for attr, closure in nix_closures(root, shape, runs.env).items():
                closures[attr].append(closure)
        report = Report(shape, closures, {})
        report.sizes = nar_sizes(report.distinct(0) | report.distinct(1), runs.env)
        (root / BUMP_FILE).write_text(bump_nix(VERSIONS[0]))
        print(describe(report, opts), flush=True)

        # warm-up: pantsd starts, the tool's PEX lands in the store; then the target goes
        repo.write("warmup/BUILD", WARMUP)
        shutil.copy(HELLO, root / "warmup" / "hello.nix")
        runs.package("warmup::")
        shutil.rmtree(root / "warmup")

        # the rows and the bumped package's version each runs with
        rows = [(Row("cold"), VERSIONS[0]), (Row("bump"), VERSIONS[1]), (Row("no-op"), VERSIONS[1])]
        for row, version in rows:
            runs.write(BUMP_FILE, bump_nix(version))
            row.pants, row.executed = runs.package("::")
            show(row, report)
        cache = work / "cli-cache"
        for row, version in rows:
            runs.write(BUMP_FILE, bump_nix(version))
            row.cli, row.cli_layers = runs.cli(attrs, cache, work / f"cli-{row.name}")
            show(row, report)
        report.rows += [row for row, _ in rows]
        if opts.import_cost:
            plain = runs.instantiate(attrs)
            rounds = calibrate_cost(runs.env)
            runs.write(COST_FILE, cost_nix(rounds))
            row = Row("no-op, import ~1 s")
            reference = runs.instantiate(attrs)
            edited, after_edit = runs.package("::")
            row.pants, row.executed = runs.package("::")
            row.cli, row.cli_layers = runs.cli(attrs, cache, work / "cli-import-cost")
            row.note = (
                f"the run right after cost.nix was written: {edited:.2f} s, {after_edit.processes['evaluate']} "
                f"evaluations; one nix-instantiate of all {len(attrs)} attributes: {reference:.2f} s ({plain:.2f} s "
                f"without the import; cost.nix: {rounds} rounds)"
            )
            show(row, report)
            report.rows.append(row)
        report.pantsd_restarts = runs.restarts
        print(table(report), flush=True)
        return report
    finally:
        if opts.pantsd:
            repo.stop_pantsd()
        if opts.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def shape_of(opts: argparse.Namespace) -> Shape:
    return Shape(
        packages=opts.packages,
        services=opts.services,
        package_bytes=int(opts.package_mb * opts.scale * MB),
        data_bytes=int(opts.data_mb * opts.scale * MB),
        excluded=opts.excluded,
    )


def describe(report: Report, opts: argparse.Namespace) -> str:
    shape, sizes = report.shape, report.sizes
    names = {p: p.split("-", 1)[1] for p in report.distinct(0)}
    runtime = [sizes[p] for p, name in names.items() if name.startswith("rt")]
    data = [sizes[p] for p, name in names.items() if "-data-" in name]
    layers = sum(len(c[0]) for c in report.closures.values())
    return (
        f"layerforge {REPO} (commit {commit()}); CLI {opts.layerforge}; pantsd {'up' if opts.pantsd else 'off'}\n"
        f"shape: {shape.packages} runtime packages (mean {sum(runtime) / len(runtime) / MB:.1f} MB), "
        f"{shape.services} services, each {shape.packages - shape.excluded} of them + its data "
        f"(mean {sum(data) / max(len(data), 1) / MB:.1f} MB) + its app: {layers} store-path layers in all, "
        f"{len(report.distinct(0))} distinct store paths, {sum(sizes[p] for p in report.distinct(0)) / MB:.0f} MB"
    )


def commit() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def layers_note(row: Row, report: Report) -> str:
    ex = row.executed
    if ex is None:
        return ""
    procs = ", ".join(f"{ex.processes[k]} {k}" for k in ("evaluate", "plan", "layer", "assemble", "record"))
    built = ex.built_paths()
    text = f"executed {procs}"
    if not ex.store_path_layers:
        return text
    text += f"; {len(ex.store_path_layers)} store-path layers built"
    if row.name == "cold":
        distinct = report.distinct(0)
        most = max(built.values())
        text += (
            f" for {len(distinct)} distinct store paths ({len(ex.store_path_layers) / len(distinct):.2f}x; "
            f"a path built up to {most} times)"
        )
    elif row.name == "bump":
        changed = report.distinct(1) - report.distinct(0)
        holding = sum(len(c[1] - c[0]) for c in report.closures.values())
        text += f" for {len(changed)} changed store paths ({holding} layers of the images hold them)"
    return text


def cli_note(row: Row) -> str:
    if row.cli_layers is None:
        return ""
    reused, built = row.cli_layers
    return f"{built} layers built, {reused} from its cache"


def seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def show(row: Row, report: Report) -> None:
    print(f"{row.name}: pants {seconds(row.pants)}, cli {seconds(row.cli)}; pants: {layers_note(row, report)}; "
          f"cli: {cli_note(row)} (load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip


def table(report: Report) -> str:
    lines = [
        "",
        "| | Pants | CLI | Pants / CLI | Pants: processes executed, layers built | CLI: layers |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        ratio = f"{row.pants / row.cli:.2f}x" if row.pants and row.cli else "-"
        note = "; ".join(n for n in (layers_note(row, report), row.note) if n)
        lines.append(f"| {row.name} | {seconds(row.pants)} | {seconds(row.cli)} | {ratio} | {note} | {cli_note(row)} |")
    if report.pantsd_restarts:
        lines.append(f"\npantsd restarted {report.pantsd_restarts} times during the runs")

    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=40, help="runtime packages (default 40)")
    parser.add_argument("--services", type=int, default=12, help="services, one image each (default 12)")
    parser.add_argument("--excluded", type=int, default=3, help="leaf packages each service leaves out (default 3)")
    parser.add_argument("--package-mb", type=float, default=18.0, help="MB of files per runtime package (default 18)")
    parser.add_argument("--data-mb", type=float, default=8.0, help="MB of files per service's data (default 8)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size (0.1: a quick run)")
    parser.add_argument("--pantsd", action=argparse.BooleanOptionalAction, default=True, help="pantsd up (default)")
    parser.add_argument("--import-cost", action="store_true", help="add the no-op row with a ~1 s Nix import")
    parser.add_argument(
        "--flake",
        action="store_true",
        help="the targets read the services as outputs of a flake (the CLI: the Nix file)",
    )
    parser.add_argument("--layerforge", default=str(Path(sys.executable).parent / "layerforge"), help="the CLI")
    parser.add_argument("--keep", action="store_true", help="keep the build root and outputs")
    parser.add_argument("--generate", type=Path, metavar="DIR", help="only write the shape into DIR")
    parser.add_argument("--bump", type=Path, metavar="DIR", help="only bump the leaf package of the shape in DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.bump:
        path = opts.bump / BUMP_FILE
        version = path.read_text().strip().strip('"')
        major, minor = version.split(".")
        path.write_text(bump_nix(f"{major}.{int(minor) + 1}"))
        print(f"{path}: {version} -> {major}.{int(minor) + 1}")
        return 0
    if opts.generate:
        shape = shape_of(opts)
        opts.generate.mkdir(parents=True, exist_ok=True)
        generate(opts.generate, shape)
        (opts.generate / "BUILD").write_text(build_file(shape).lstrip())
        print(f"{opts.generate}: {NIX_FILE} ({', '.join(shape.attrs())}), {BUMP_FILE}, {COST_FILE}, BUILD")
        return 0
    run(opts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
