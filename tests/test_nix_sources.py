"""Where a nix-image's closure comes from, with real Nix: flakes (`--flake`, evaluated with the
lock file, never updating it), derivations (`--derivation`, what Pants hands the plan), and store
paths missing from the local store, realised through a real `file://` binary cache. Every
image is run with podman + runc."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, image_parts, run_cli
from tests.nix_support import (
    FLAKE,
    IMAGES_NIX,
    build,
    copy_to_cache,
    delete_from_store,
    layer_job,
    nix_env,
    nix_image,
    store_layer,
    substituter_config,
)
from tests.runtime_support import Podman, assert_runs_as_configured

FLAKE_FEATURES = ("--extra-experimental-features", "nix-command flakes")


pytestmark = pytest.mark.usefixtures("nix_cli_env")


def digest(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.split()[-1]


def flake_copy(tmp_path: Path, greeting: str = "hello from a flake\n") -> Path:
    d = tmp_path / "project" / "flake"
    shutil.copytree(FLAKE, d)
    (d / "greeting.txt").write_text(greeting)
    return d


def flake_tools(flake: Path) -> str:
    """The busybox of the flake's `tools` output (built), as the image holds it."""
    argv = ["nix", *FLAKE_FEATURES, "build", "--no-link", "--json", f"path:{flake}#tools"]
    out = subprocess.run(argv, capture_output=True, text=True, env=nix_env(), timeout=300, check=True).stdout
    return str(json.loads(out)[0]["outputs"]["out"]) + "/bin/busybox"


def test_flake_image_runs_and_reference_forms_agree(tmp_path: Path, podman: Podman) -> None:
    flake = flake_copy(tmp_path)
    config = ["--entrypoint", "/bin/sh", "--cmd", '["-c", "hello"]', "--env", "PATH=/bin", "--workdir", "/nix"]
    out = tmp_path / "img"
    first = digest(nix_image("--flake", ".#app", "--copy-to-root-attr", ".#tools", "--copy-to-root-attr", ".#app",
                             *config, "--out", out, cwd=flake))  # fmt: skip
    assert podman.run(out, "latest").stdout == "hello from a flake\n"
    _, _, image_config = image_parts(out)
    assert_runs_as_configured(podman.probe(out, "latest", flake_tools(flake)), image_config)
    # The same flake outputs named other ways, from other directories, give the same image.
    forms = [
        (flake, ".#packages.x86_64-linux.app", ".#tools", "#app"),
        (flake.parent, "path:flake#app", "path:flake#tools", "path:flake#packages.x86_64-linux.app"),
        (flake.parent, "./flake#app", "./flake#packages.x86_64-linux.tools", "./flake"),
        (tmp_path, f"{flake}#app", f"path:{flake}#tools", f"{flake}#default"),
    ]
    for i, (cwd, ref, tools, app) in enumerate(forms):
        args = ["--copy-to-root-attr", tools, "--copy-to-root-attr", app, *config]
        assert digest(nix_image("--flake", ref, *args, "--out", tmp_path / f"f{i}", cwd=cwd)) == first, ref
    assert not (flake / "flake.lock").exists(), "a flake without inputs gets no lock file written"

    (flake / "greeting.txt").write_text("a new greeting\n")
    changed = nix_image("--flake", ".#app", "--copy-to-root-attr", ".#tools", "--copy-to-root-attr", ".#app",
                        *config, "--out", tmp_path / "changed", cwd=flake)  # fmt: skip
    assert digest(changed) != first
    assert podman.run(tmp_path / "changed", "latest").stdout == "a new greeting\n"


def test_flake_lock_is_used_never_updated(tmp_path: Path, podman: Podman) -> None:
    """A flake with a `path:` input: its lock file pins it; an out-of-date lock is an error."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "flake.nix").write_text('{ outputs = { self }: { word = "locked word"; }; }\n')
    flake = flake_copy(tmp_path)
    text = (flake / "flake.nix").read_text()
    (flake / "flake.nix").write_text(
        text.replace(
            "{\n  outputs = { self }:", f'{{\n  inputs.words.url = "path:{lib}";\n  outputs = {{ self, words }}:'
        ).replace("builtins.readFile ./greeting.txt", "words.word")
    )
    out = tmp_path / "img"
    stale = nix_image("--flake", f"{flake}#app", "--out", out, check=False)
    assert_one_line_error(stale, "--flake", "requires lock file changes", "--no-update-lock-file")
    assert not out.exists() and not (flake / "flake.lock").exists(), "the lock file is never written"
    lock = subprocess.run(["nix", *FLAKE_FEATURES, "flake", "lock", f"path:{flake}"], capture_output=True,
                          text=True, env=nix_env(), timeout=120, check=False)  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    locked = (flake / "flake.lock").read_bytes()
    nix_image("--flake", f"{flake}#app", "--copy-to-root-attr", f"{flake}#tools", "--copy-to-root-attr",
              f"{flake}#app", "--entrypoint", "/bin/hello", "--out", out)  # fmt: skip
    assert podman.run(out, "latest").stdout == "locked word"
    assert (flake / "flake.lock").read_bytes() == locked


def test_derivations_give_the_nix_file_image(tmp_path: Path, podman: Podman) -> None:
    """`--derivation DRV[!OUT]` (what Pants' evaluation hands the plan) builds what
    `--nix-file FILE -A ATTR` builds."""
    drvs = {}
    for attr in ("app", "busyboxPkg"):
        proc = subprocess.run(["nix-instantiate", str(IMAGES_NIX), "-A", attr], capture_output=True, text=True,
                              env=nix_env(), timeout=120, check=True)  # fmt: skip
        drvs[attr] = proc.stdout.strip()
    common = ["--entrypoint", "/bin/hello", "--env", "PATH=/bin", "--sbom"]
    by_file = nix_image("--nix-file", IMAGES_NIX, "-A", "app", "--copy-to-root-attr", "busyboxPkg",
                        "--copy-to-root-attr", "app", *common, "--out", tmp_path / "file")  # fmt: skip
    by_drv = nix_image("--derivation", drvs["app"], "--copy-to-root-derivation", f"{drvs['busyboxPkg']}!out",
                       "--copy-to-root-derivation", drvs["app"], *common, "--out", tmp_path / "drv")  # fmt: skip
    assert digest(by_drv) == digest(by_file)
    assert podman.run(tmp_path / "drv", "latest").stdout == "hello from libgreet\napp 1.0\n"
    _, _, config = image_parts(tmp_path / "drv")
    assert_runs_as_configured(podman.probe(tmp_path / "drv", "latest", f"{build('busyboxPkg')}/bin/busybox"), config)


@pytest.fixture
def unique_app() -> str:
    """A store path of its own (no other test uses it), built now: it may be deleted."""
    return build("app", appVersion=f"realise-{uuid.uuid4().hex[:12]}")


def test_missing_store_paths_are_realised_through_substituters(tmp_path: Path, unique_app: str, podman: Podman) -> None:
    cache = tmp_path / "binary-cache"
    copy_to_cache(cache, unique_app)
    busybox = build("busyboxPkg")
    whole = nix_image("--store-path", unique_app, "--copy-to-root", busybox, "--entrypoint", "/bin/sh",
                      "--cmd", f'["-c", "{unique_app}/bin/hello"]', "--out", tmp_path / "whole")  # fmt: skip
    delete_from_store(unique_app)

    # One layer (as Pants runs it when the plan came from a cache and the layer did not).
    layer = tmp_path / "layer"
    env = {**os.environ, "NIX_CONFIG": substituter_config(cache)}
    run_cli("nix-layer", "--job", layer_job((layer, store_layer(unique_app))), env=env)
    assert Path(unique_app).is_dir() and (layer / "layer.json").is_file()

    # The whole image, from a store that lacks the path: realised, the same image, and it runs.
    delete_from_store(unique_app)
    again = run_cli("nix-image", "--store-path", unique_app, "--copy-to-root", busybox, "--entrypoint", "/bin/sh",
                    "--cmd", f'["-c", "{unique_app}/bin/hello"]', "--out", tmp_path / "again", env=env)  # fmt: skip
    assert digest(again) == digest(whole)
    assert podman.run(tmp_path / "again", "latest").stdout.endswith("app " + unique_app.split("-app-")[1] + "\n")

    # No substituter has it: one error naming the path, nothing written.
    delete_from_store(unique_app)
    for command, out in (("nix-layer", tmp_path / "no-layer"), ("nix-image", tmp_path / "no-image")):
        if command == "nix-layer":
            bad = run_cli(command, "--job", layer_job((out, store_layer(unique_app))), check=False)
        else:
            bad = run_cli(command, "--store-path", unique_app, "--out", out, check=False)
        assert_one_line_error(bad, "--store-path", unique_app, "not in the local Nix store", "substituters")
        assert bad.returncode == 1 and not out.exists()


def test_bad_sources(tmp_path: Path) -> None:
    flake = flake_copy(tmp_path)
    out = tmp_path / "never"
    drv = "/nix/store/" + "a" * 32 + "-missing.drv"
    cases = [
        (["--flake", f"{flake}#nope"], ["--flake", "does not provide attribute", "nope"]),
        (["--flake", f"{flake}#lib.greeting"], ["--flake", "not a derivation"]),
        (["--flake", str(tmp_path / "nowhere")], ["--flake", "has no flake.nix"]),
        (["--flake", f"{flake}#app", "--nix-file", IMAGES_NIX], ["--flake", "--nix-file is given too"]),
        (["--flake", f"{flake}#app", "-A", "app"], ["--attr", "needs --nix-file"]),
        (["--flake", f"{flake}#app", "--copy-to-root-attr", f"{flake}#nope"],
         ["--copy-to-root-attr", "does not provide attribute"]),
        (["--store-path", build("app"), "--copy-to-root-attr", "x"],
         ["--copy-to-root-attr", "needs --nix-file or --flake"]),
        (["--derivation", "/nix/store/x.drv"], ["--derivation", "not a derivation output"]),
        (["--derivation", f"{drv}!out"], ["--derivation", "missing.drv"]),
        (["--derivation", f"{drv}", "--store-path", build("app")], ["--store-path", "--derivation is given too"]),
    ]  # fmt: skip
    for args, needles in cases:
        proc = nix_image(*args, "--out", out, check=False)
        assert_one_line_error(proc, *needles)
        assert not out.exists()
