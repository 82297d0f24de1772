"""Copy-to-root reads only inside the Nix store (third review, finding 1).

A derivation's output can be a symlink out of the store (``ln -s /home/ci/.docker $out``)
without reading anything in Nix's sandbox. With ``--copy-to-root-mode copy`` the root layer
used to follow it and copy the host directory's files into the image, in ``nix-image`` and
in the ``nix-layer`` root job Pants runs. Here the host directory is a canary outside every
output: a copy-to-root path resolving out of the store is refused in one line, in both
modes and both fronts; symlinks below a store path that point out of it stay symlinks; a
store path linking to another store path is still merged.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from functools import cache
from pathlib import Path

import pytest

from layerforge.images.nix.layer_jobs import ROOT, LayerJob
from tests.helpers import assert_one_line_error, blob_path, image_parts, run_cli
from tests.hostile_support import make_canary, tree_state
from tests.nix_support import layer_job, nix_env, nix_image

pytestmark = pytest.mark.usefixtures("nix_cli_env")

SECRET = b"s3cret\n"  # make_canary's sub/secret

NIX = """{ canary }:
let
  sh = name: script: derivation {
    inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" script ]; PATH = "/bin:/usr/bin";
  };
in rec {
  escape = sh "escape" "ln -s ${canary} $out";
  relay = sh "relay" "ln -s ${escape} $out";
  escapeBelow = sh "escape-below"
    "mkdir -p $out/etc && ln -s ${canary}/sub $out/secrets && ln -s ${canary}/sub/secret $out/etc/secret";
  relayBelow = sh "relay-below" "mkdir -p $out && ln -s ${escape} $out/home";
  inner = sh "inner" "mkdir -p $out/etc && echo hi > $out/etc/motd";
  alias = sh "alias" "ln -s ${inner} $out";
}
"""


@cache
def _built(canary: str) -> dict[str, str]:
    """Every attribute of ``NIX`` built with ``canary`` as the host directory."""
    nix_file = Path(canary).parent / "confinement.nix"
    nix_file.write_text(NIX)
    paths = {}
    for attr in ("escape", "relay", "escapeBelow", "relayBelow", "inner", "alias"):
        argv = ["nix-build", str(nix_file), "-A", attr, "--argstr", "canary", canary, "--no-out-link"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=nix_env(), timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        paths[attr] = proc.stdout.strip()
    return paths


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    canary = make_canary(tmp_path_factory.mktemp("outside") / "home-ci-docker")
    return canary, _built(str(canary))


def _layer_members(layout: Path) -> dict[str, tuple[str, bytes]]:
    """Every member of every layer of the image: name -> (type, content)."""
    _, manifest, _ = image_parts(layout)
    out: dict[str, tuple[str, bytes]] = {}
    for layer in manifest["layers"]:
        data = blob_path(layout, layer["digest"]).read_bytes()
        if layer["mediaType"].endswith("gzip"):
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                kind = "symlink:" + m.linkname if m.issym() else "file" if m.isfile() else "dir" if m.isdir() else "?"
                out[m.name.rstrip("/")] = (kind, f.read() if f else b"")
    return out


@pytest.mark.parametrize("mode", ["copy", "symlink"])
@pytest.mark.parametrize("attr", ["escape", "relay"])
def test_nix_image_refuses_a_copy_to_root_path_resolving_out_of_the_store(
    tmp_path: Path, store: tuple[Path, dict[str, str]], attr: str, mode: str
) -> None:
    canary, paths = store
    before = tree_state(canary)
    out = tmp_path / "out"
    proc = nix_image("--store-path", paths["inner"], "--copy-to-root", paths[attr], "--copy-to-root-mode", mode,
                     "--out", out, check=False)  # fmt: skip
    assert_one_line_error(proc, f"'{paths[attr]}'", f"'{canary}'", "outside /nix/store")
    assert not out.exists()
    assert tree_state(canary) == before


@pytest.mark.parametrize("mode", ["copy", "symlink"])
@pytest.mark.parametrize("attr", ["escape", "relay"])
def test_root_layer_job_refuses_a_copy_to_root_path_resolving_out_of_the_store(
    tmp_path: Path, store: tuple[Path, dict[str, str]], attr: str, mode: str
) -> None:
    """The root-layer job as a Pants process runs it (``nix-layer --job``, a root layer)."""
    canary, paths = store
    before = tree_state(canary)
    out = tmp_path / "root-layer"
    job = LayerJob(ROOT, 1, copy_to_root=(paths[attr],), copy_to_root_mode=mode)
    proc = run_cli("nix-layer", "--job", layer_job((out, job)), check=False)
    assert_one_line_error(proc, "nix-layer", f"'{paths[attr]}'", "outside /nix/store")
    assert not out.exists()
    assert tree_state(canary) == before


@pytest.mark.parametrize("attr", ["escapeBelow", "relayBelow"])
def test_symlinks_below_a_store_path_that_point_out_stay_symlinks(
    tmp_path: Path, store: tuple[Path, dict[str, str]], attr: str
) -> None:
    canary, paths = store
    before = tree_state(canary)
    out = tmp_path / "out"
    nix_image("--store-path", paths["inner"], "--copy-to-root", paths[attr], "--copy-to-root-mode", "copy",
              "--out", out)  # fmt: skip
    members = _layer_members(out)
    assert not any(SECRET in data for _, data in members.values())
    assert not any(name.endswith("/keep.txt") or name == "keep.txt" for name in members)
    if attr == "escapeBelow":
        assert members["secrets"] == (f"symlink:{canary}/sub", b"")
        assert members["etc/secret"] == (f"symlink:{canary}/sub/secret", b"")
    else:
        assert members["home"] == (f"symlink:{paths['escape']}", b"")
    assert tree_state(canary) == before


def test_a_store_path_linking_to_another_store_path_is_merged(
    tmp_path: Path, store: tuple[Path, dict[str, str]]
) -> None:
    _, paths = store
    out = tmp_path / "out"
    nix_image("--store-path", paths["inner"], "--copy-to-root", paths["alias"], "--copy-to-root-mode", "copy",
              "--out", out)  # fmt: skip
    assert _layer_members(out)["etc/motd"] == ("file", b"hi\n")
    linked = tmp_path / "linked"
    nix_image("--store-path", paths["inner"], "--copy-to-root", paths["alias"], "--out", linked)
    assert _layer_members(linked)["etc/motd"] == (f"symlink:{paths['alias']}/etc/motd", b"")
