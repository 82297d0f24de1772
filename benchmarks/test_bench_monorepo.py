"""Smoke runs of benchmarks/monorepo.py at a tiny scale (6 runtime packages of ~0.2 MB, 2
services): the shape, Pants and the CLI side by side, and what each built. Which layers were
built is asserted (read from the runs themselves); timing is printed, never asserted.

Run for numbers: .venv/bin/python benchmarks/monorepo.py (see its docstring).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.nix_support import NIX_CONFIG

from benchmarks.monorepo import main, parse_args, run
from benchmarks.monorepo_shape import BUMP_FILE, NIX_FILE

TINY = ["--scale", "0.01", "--packages", "6", "--services", "2", "--excluded", "1"]


def test_monorepo_side_by_side() -> None:
    report = run(parse_args([*TINY, "--import-cost"]))
    rows = {r.name: r for r in report.rows}
    assert list(rows) == ["cold", "bump", "no-op", "no-op, import ~1 s"]
    distinct, layers = report.distinct(0), sum(len(c[0]) for c in report.closures.values())
    assert len(distinct) == 6 + 2 * 2 and layers == 2 * (5 + 2)
    changed = report.distinct(1) - distinct
    assert {p.split("-", 1)[1] for p in changed} == {"rt5-1.1", "svc0-app-1.0", "svc1-app-1.0"}

    cold, bump, noop = (rows[k].executed for k in ("cold", "bump", "no-op"))
    assert cold and bump and noop
    assert set(cold.built_paths()) == distinct  # every store path of the images went into a layer
    assert changed <= set(bump.built_paths())
    assert noop.processes["layer"] == noop.processes["plan"] == noop.processes["assemble"] == 0
    # the CLI, one image after the other with one layer cache: each distinct path built once
    assert rows["cold"].cli_layers == (layers - len(distinct), len(distinct))
    assert rows["bump"].cli_layers == (layers - len(changed), len(changed))
    assert rows["no-op"].cli_layers == (layers, 0)
    assert rows["no-op, import ~1 s"].cli_layers == (layers, 0)


def test_generate_and_bump(tmp_path: Path) -> None:
    assert main([*TINY, "--generate", str(tmp_path)]) == 0
    assert (tmp_path / "BUILD").read_text().count("nix_oci_image(") == 2
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}

    def derivations() -> list[str]:
        argv = ["nix-instantiate", f"./{NIX_FILE}", "-A", "svc0", "-A", "svc1"]
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()

    before = derivations()
    assert main(["--bump", str(tmp_path)]) == 0
    assert (tmp_path / BUMP_FILE).read_text() == '"1.1"\n'
    after = derivations()
    assert len(before) == len(after) == 2 and not set(before) & set(after)  # both services hold the bumped leaf
