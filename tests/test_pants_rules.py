"""The RuleRunner tier: the Pants plugin's fields and argv builders under Pants' own engine
(``pants-plugins/rule_tests/``, pantsbuild.pants.testutil), which needs the interpreter
Pants 2.17 runs on (CPython 3.9, ``.venv-pants``, built by scripts/test): run there as one
pytest session of a few seconds, no Pants run and no process of the tool."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv-pants" / "bin" / "python"
CASES = ROOT / "pants-plugins" / "rule_tests"


def test_rule_runner_cases_pass_on_pants_interpreter() -> None:
    assert PYTHON.exists(), f"{PYTHON} is missing: run ./scripts/test, which creates it"
    proc = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "pants-plugins")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed is not None and int(passed.group(1)) >= 150, proc.stdout[-2000:]
    assert "failed" not in proc.stdout.splitlines()[-1] and "skipped" not in proc.stdout.splitlines()[-1]
