"""The nix_oci_image evaluation process (nix/evaluation.py: evaluation_process) as root without
the group Nix's `build-users-group` names (Debian's nix-bin as root, no `nixbld`): a build the
evaluation needs (import from derivation) runs as a single-user root install's does, with
nothing set by the user; a group that exists is left to Nix; what Nix prints (the derivations,
which key the plan) is the same either way. The process's argv is run here as Pants runs it,
with its env and NIX_CONFIG without a `build-users-group` line (Nix's own default, `nixbld`)."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars
from pants.engine.fs import EMPTY_DIGEST
from pants.engine.process import Process, ProcessCacheScope
from pants.util.frozendict import FrozenDict

from layerforge_pants.goals.tool import NIX_TOOLS, NixTools, tool_env
from layerforge_pants.nix.evaluation import NixEvaluation, evaluation_process

#: The fixtures' builder is the host's busybox, which Nix's sandbox hides.
CONFIG = "sandbox = false\nsubstituters =\n"
#: Evaluating needs a build: the attribute set `gen` writes is imported.
IFD_NIX = """{ tag }:
let
  busybox = "/bin/busybox";
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
  };
  gen = mk "ifd-gen-${tag}" "${busybox} echo '{ x = \\"${tag}\\"; }' > $out";
in mk "ifd-${(import gen).x}" "${busybox} touch $out"
"""
PLAIN_NIX = """{ tag }: derivation { name = "plain-${tag}"; system = builtins.currentSystem; builder = "/bin/sh"; }
"""


def nix_tools() -> NixTools:
    found = {name: shutil.which(name) for name in NIX_TOOLS}
    assert all(found.values()), f"Nix is not installed: {found}"
    return NixTools(FrozenDict({k: str(v) for k, v in found.items()}))


def process(config: str, nix_file: str, tag: str) -> Process:
    request = NixEvaluation.nix_file(
        nix_file, attrs=(), argstrs=(("tag", tag),), digest=EMPTY_DIGEST, address=Address("src", target_name="img"),
        field="nix_file",
    )  # fmt: skip
    nix = nix_tools()
    return evaluation_process(request, nix, tool_env(EnvironmentVars({"NIX_CONFIG": config}), nix))


def run(proc: Process, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(proc.argv), env=dict(proc.env), cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def missing(group: str) -> bool:
    try:
        grp.getgrnam(group)
    except KeyError:
        return True
    return False


def test_the_process_runs_the_tool_with_its_argv_uncached() -> None:
    proc = process(CONFIG, "src/x.nix", "t")
    tools = nix_tools()
    assert proc.argv[:2] == ("/bin/sh", "-c")
    assert proc.argv[4:] == (tools.path("nix"), tools.path("nix-instantiate"), "./src/x.nix", "--argstr", "tag", "t")
    assert proc.env["NIX_CONFIG"] == CONFIG and "build-users-group" not in proc.env["NIX_CONFIG"]
    assert proc.cache_scope == ProcessCacheScope.PER_SESSION


def test_evaluation_building_as_root_without_the_group(tmp_path: Path) -> None:
    assert os.geteuid() == 0 and missing("nixbld"), "this test needs root and no `nixbld` group (Debian's nix-bin)"
    (tmp_path / "ifd.nix").write_text(IFD_NIX)
    done = run(process(CONFIG, "ifd.nix", uuid.uuid4().hex), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(".drv") and "-ifd-" in done.stdout, done.stdout


def test_a_group_that_exists_is_left_to_nix(tmp_path: Path) -> None:
    # `root` exists and has no members: Nix's own refusal shows nothing overrode it.
    assert not missing("root") and not grp.getgrnam("root").gr_mem
    (tmp_path / "ifd.nix").write_text(IFD_NIX)
    done = run(process(CONFIG + "build-users-group = root\n", "ifd.nix", uuid.uuid4().hex), tmp_path)
    assert done.returncode != 0
    assert "the build users group 'root' has no members" in done.stderr, done.stderr


def test_the_derivations_are_the_same_with_or_without_build_users(tmp_path: Path) -> None:
    (tmp_path / "plain.nix").write_text(PLAIN_NIX)
    tag = uuid.uuid4().hex
    without = run(process(CONFIG, "plain.nix", tag), tmp_path)
    empty = run(process(CONFIG + "build-users-group =\n", "plain.nix", tag), tmp_path)
    assert without.returncode == 0 and empty.returncode == 0, without.stderr + empty.stderr
    assert without.stdout == empty.stdout and without.stdout.strip().endswith(".drv")
