"""The one evaluation of a Nix file for all the images that read it gives each attribute
exactly the derivations `nix-instantiate FILE -A ATTR` gives it (real Nix: attribute paths
with dots and list indices, a function file auto-called with --argstr, several outputs, an
attribute set of derivations, the whole file), and nothing when its output is not one
separated list per attribute."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from layerforge_pants.nix.shared_evaluation import (
    SEPARATOR,
    WRAPPER,
    SharedAttrs,
    shared_derivations,
    shared_evaluation,
    wrapper_source,
)

pytestmark = pytest.mark.skipif(shutil.which("nix-instantiate") is None, reason="needs Nix (nix-bin)")

NIX = """\
{ salt ? "none", busybox ? "/bin/busybox" }:
let
  mk = name: extra: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" "echo ${salt} > $out" ];
  } // extra);
in rec {
  app = mk "app-1.0" { };
  multi = mk "multi-1.0" { outputs = [ "out" "dev" ]; };
  dev = multi.dev;
  nested.deeper."with.dot" = mk "nested-1.0" { };
  list = [ (mk "first-1.0" { }) (mk "second-1.0" { }) ];
  set = { a = mk "set-a-1.0" { }; b = mk "set-b-1.0" { }; };
}
"""
ATTRS = ("", "app", "dev", "list", "list.1", 'nested.deeper."with.dot"', "set")
ARGSTRS = (("salt", "shared-evaluation"),)


def nix_env() -> dict[str, str]:
    return {**os.environ, "NIX_CONFIG": "sandbox = false\nbuild-users-group ="}


def instantiate(cwd: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["nix-instantiate", *argv], cwd=cwd, env=nix_env(), capture_output=True, timeout=120,
                          check=False)  # fmt: skip


def direct(cwd: Path, path: str, attr: str) -> tuple[str, ...]:
    """What the image's own evaluation (`nix-instantiate ./FILE -A ATTR --argstr ...`) gives."""
    argv = [f"./{path}", *(["-A", attr] if attr else []), *(a for k, v in ARGSTRS for a in ("--argstr", k, v))]
    proc = instantiate(cwd, *argv)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().split()
    return tuple(sorted(line if "!" in line else f"{line}!out" for line in lines))


def test_each_attribute_gets_what_its_own_evaluation_gives(tmp_path: Path) -> None:
    path = "services/images.nix"
    (tmp_path / "services").mkdir()
    (tmp_path / path).write_text(NIX)
    (tmp_path / WRAPPER).write_text(wrapper_source(path))
    shared = SharedAttrs(path, ARGSTRS, None, ATTRS)
    evaluation = shared_evaluation(shared, None, None)  # type: ignore[arg-type]
    proc = instantiate(tmp_path, *evaluation.argv)
    assert proc.returncode == 0, proc.stderr.decode()
    by_attr = shared_derivations(shared, proc.returncode, proc.stdout)
    assert by_attr is not None, proc.stdout.decode()
    assert by_attr == {attr: direct(tmp_path, path, attr) for attr in ATTRS}
    assert by_attr["dev"] == tuple(o for o in by_attr[""] if o.endswith("!dev"))
    assert len(by_attr["list"]) == 2 and len(by_attr["set"]) == 2


def test_a_broken_attribute_or_an_unseparated_output_is_no_answer(tmp_path: Path) -> None:
    path = "images.nix"
    (tmp_path / path).write_text(NIX)
    (tmp_path / WRAPPER).write_text(wrapper_source(path))
    shared = SharedAttrs(path, ARGSTRS, None, ("app", "missing"))
    proc = instantiate(tmp_path, *shared_evaluation(shared, None, None).argv)  # type: ignore[arg-type]
    assert proc.returncode != 0 and shared_derivations(shared, proc.returncode, proc.stdout) is None
    sep = f"/nix/store/{'a' * 32}-{SEPARATOR}.drv"
    drv = f"/nix/store/{'b' * 32}-app-1.0.drv"
    two = SharedAttrs(path, (), None, ("a", "b"))
    assert shared_derivations(two, 0, f"{drv}\n{sep}\n{drv}\n{sep}\n".encode()) == {
        "a": (f"{drv}!out",),
        "b": (f"{drv}!out",),
    }
    assert shared_derivations(two, 0, f"{drv}\n{sep}\n{drv}\n".encode()) is None, "the last separator missing"
    assert shared_derivations(two, 0, f"{drv}\n{sep}\n".encode()) is None, "one list for two attributes"
    assert shared_derivations(two, 0, f"{drv}\n{sep}\nwarning: x\n{sep}\n".encode()) is None, "not a derivation"


def test_the_wrapper_quotes_any_file_name() -> None:
    assert wrapper_source('a "b" ${c}.nix').startswith('{ file = import (./. + "/a \\"b\\" \\${c}.nix"); ')
