"""The one evaluation of a flake for all the images that read it gives each output exactly the
derivation `nix eval path:DIR#OUTPUT --apply TO_DERIVATION` gives it (real Nix, the image's own
evaluation as the reader): packages of the system, legacyPackages, top-level outputs, absolute
attribute paths, a quoted name with a dot, the default package, an output naming another
output, `self`'s store path, narHash and lastModified in a derivation, and another system
(`--system`); and nothing when Nix fails or prints anything else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from layerforge_pants.nix.flake import FLAKE_FEATURES, TO_DERIVATION, FlakeRef
from layerforge_pants.nix.shared_flake_evaluation import (
    SharedFlake,
    attr_path,
    candidates,
    config_system,
    locked_url,
    metadata_evaluation,
    outputs_evaluation,
    shareable,
    shared_flake_derivations,
    sorted_fragments,
    system_evaluation,
)

pytestmark = pytest.mark.skipif(shutil.which("nix") is None, reason="needs Nix (nix-bin)")

FLAKE = """\
{
  outputs = { self }: let
    mk = system: name: derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" "echo ${self.outPath} ${toString self.lastModified} ${self.narHash} > $out" ];
    };
    for = system: {
      app = mk system "app-1.0";
      default = mk system "default-1.0";
      "with.dot" = mk system "dot-1.0";
      packages = mk system "shadow-1.0";
    };
  in {
    packages.x86_64-linux = for "x86_64-linux";
    packages.aarch64-linux = for "aarch64-linux";
    legacyPackages.x86_64-linux.legacy = mk "x86_64-linux" "legacy-1.0";
    legacyPackages.x86_64-linux.app = mk "x86_64-linux" "not-chosen-1.0";
    tool = mk "x86_64-linux" "tool-1.0";
    multi = (mk "x86_64-linux" "multi-1.0") // { outputName = "dev"; };
  };
}
"""
FRAGMENTS = (None, "app", "legacy", "tool", "packages", '"with.dot"', "packages.x86_64-linux.app",
             "legacyPackages.x86_64-linux.app", "multi")  # fmt: skip


def nix_env() -> dict[str, str]:
    return {**os.environ, "NIX_CONFIG": "sandbox = false\nbuild-users-group ="}


def nix(cwd: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["nix", *argv], cwd=cwd, env=nix_env(), capture_output=True, timeout=300, check=False)


def direct(cwd: Path, ref: FlakeRef, system: str | None) -> str:
    """What the image's own evaluation (`nix eval --raw path:DIR#OUTPUT --apply ...`) gives."""
    systems = ("--system", system) if system else ()
    argv = (*FLAKE_FEATURES, "eval", "--raw", "--no-update-lock-file", *systems, ref.installable())
    proc = nix(cwd, *argv, "--apply", TO_DERIVATION)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def shared_answer(cwd: Path, shared: SharedFlake) -> dict[str | None, tuple[str, ...]] | None:
    """The metadata, system and outputs evaluations run as the plugin runs them."""
    metadata = nix(cwd, *metadata_evaluation(shared, None).argv)  # type: ignore[arg-type]
    assert metadata.returncode == 0, metadata.stderr.decode()
    url = locked_url(metadata.stdout)
    assert url is not None, metadata.stdout
    system = shared.system
    if system is None:
        config = nix(cwd, *system_evaluation(shared, None).argv)  # type: ignore[arg-type]
        system = config_system(config.stdout)
    assert system is not None
    proc = nix(cwd, *outputs_evaluation(shared, url, system, None).argv)  # type: ignore[arg-type]
    return shared_flake_derivations(shared, proc.returncode, proc.stdout)


@pytest.mark.parametrize("system", [None, "aarch64-linux"])
def test_each_output_gets_what_its_own_evaluation_gives(tmp_path: Path, system: str | None) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "flake.nix").write_text(FLAKE)
    fragments = FRAGMENTS if system is None else (None, "app", "packages")
    shared = SharedFlake("svc", system, None, sorted_fragments(fragments))  # type: ignore[arg-type]
    answer = shared_answer(tmp_path, shared)
    assert answer is not None
    for fragment in fragments:
        own = direct(tmp_path, FlakeRef("svc", fragment), system)
        assert answer[fragment] == (own,), fragment
    if system is None:
        assert answer["legacyPackages.x86_64-linux.app"] != answer["app"], "packages come before legacyPackages"
        assert answer["multi"][0].endswith("!dev")
    # self's store path, narHash and lastModified are in every derivation: the flake read is
    # the one the image's own evaluation reads (a change of a file changes them all)
    (tmp_path / "svc" / "data.txt").write_text("changed\n")
    again = shared_answer(tmp_path, shared)
    assert again is not None and again[None] != answer[None]
    assert again[None] == (direct(tmp_path, FlakeRef("svc", None), system),)


def test_no_answer_when_nix_fails_or_prints_anything_else(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "flake.nix").write_text(FLAKE)
    missing = SharedFlake("svc", None, None, ("app", "nothere"))  # type: ignore[arg-type]
    assert shared_answer(tmp_path, missing) is None, "one missing output: each image evaluates alone"
    two = SharedFlake("svc", None, None, ("a", "b"))  # type: ignore[arg-type]
    drv = "/nix/store/" + "a" * 32 + "-app-1.0.drv!out"
    assert shared_flake_derivations(two, 0, json.dumps([drv, drv]).encode()) == {"a": (drv,), "b": (drv,)}
    for printed in ([drv], [drv, "/tmp/x.drv!out"], {"a": drv}, [drv, 1]):
        assert shared_flake_derivations(two, 0, json.dumps(printed).encode()) is None, printed
    assert shared_flake_derivations(two, 1, json.dumps([drv, drv]).encode()) is None
    assert shared_flake_derivations(two, 0, b"not json") is None


def test_attribute_paths_split_as_nix_splits_them() -> None:
    assert attr_path("a.b") == ["a", "b"]
    assert attr_path('a."b.c".d') == ["a", "b.c", "d"]
    assert attr_path("a..b") == ["a", "", "b"] and attr_path("a.") == ["a"]
    assert attr_path('a."b') is None
    assert candidates("app", "x86_64-linux") == [
        ["packages", "x86_64-linux", "app"], ["legacyPackages", "x86_64-linux", "app"], ["app"]]  # fmt: skip
    assert candidates(None, "s")[2:] == [["packages", "s", "default"], ["defaultPackage", "s"]]
    assert not shareable(FlakeRef(".", "a%2Eb")) and not shareable(FlakeRef(".", 'a."b'))
    assert shareable(FlakeRef(".", None)) and shareable(FlakeRef(".", 'a."b.c"'))


def test_only_a_locked_store_copy_is_read() -> None:
    store = "/nix/store/" + "b" * 32 + "-source"
    good = {"path": store, "locked": {"type": "path", "narHash": "sha256-" + "A" * 43 + "=", "lastModified": 7}}
    assert locked_url(json.dumps(good).encode()) == f"path:{store}?lastModified=7&narHash=sha256-{'A' * 43}%3D"
    for bad in ({**good, "path": "/tmp/x"}, {**good, "locked": {**good["locked"], "type": "git"}},  # type: ignore[dict-item]
                {**good, "locked": {**good["locked"], "narHash": "sha256-x\"; y"}},  # type: ignore[dict-item]
                {**good, "locked": {**good["locked"], "lastModified": "7"}}, {"path": store}):  # type: ignore[dict-item]  # fmt: skip
        assert locked_url(json.dumps(bad).encode()) is None, bad
    assert config_system(b'{"system": {"value": "x86_64-linux"}}') == "x86_64-linux"
    assert config_system(b'{"system": {"value": "x86 64"}}') is None and config_system(b"{}") is None
