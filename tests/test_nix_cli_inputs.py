"""Arguments and base-image fields of the Nix commands read as hostile (third review, the
CLI-only findings): a value shaped like an option never reaches Nix as one, two `--out`s of
`nix-layer` resolving to one directory are refused (native front included), and what a new
image inherits from its base obeys the rules its own options do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, image_parts, run_cli
from tests.hostile_support import make_canary, tree_state, write_layout
from tests.nix_support import IMAGES_NIX, build, layer_job, nix_image, store_layer

pytestmark = pytest.mark.usefixtures("nix_cli_env")


@pytest.mark.parametrize("ref", ["--version", "-h", "--option=x"])
def test_a_flake_reference_shaped_like_an_option_is_refused(tmp_path: Path, ref: str) -> None:
    out = tmp_path / "out"
    proc = nix_image(f"--flake={ref}", "--out", out, check=False, cwd=tmp_path)
    assert_one_line_error(proc, "--flake", f"'{ref}' is not a flake reference")
    assert not out.exists()


def test_a_nix_file_named_like_an_option_is_read_as_the_file(tmp_path: Path) -> None:
    """`nix-build --help` would print Nix's help and build nothing."""
    (tmp_path / "--help").write_text(f"(import {IMAGES_NIX} {{}}).app\n")
    nix_image("--nix-file=--help", "--out", tmp_path / "out", cwd=tmp_path)
    _, _, config = image_parts(tmp_path / "out")
    assert config["rootfs"]["diff_ids"]


def test_nix_layer_refuses_two_outs_resolving_to_one_directory(tmp_path: Path) -> None:
    """The native front hands such a command to Python, which refuses it before building."""
    app, etc = build("app"), build("etc")
    (tmp_path / "x").mkdir()
    canary = make_canary(tmp_path / "canary")
    before = tree_state(canary)
    (tmp_path / "link").symlink_to("layer")
    for alias in ("x/../layer", "link", str(tmp_path / "layer")):
        job = layer_job(("layer", store_layer(app)), (alias, store_layer(etc)))
        proc = run_cli("nix-layer", "--job", job, check=False, cwd=tmp_path)
        assert_one_line_error(proc, "--job", f"'layers[1].out' '{alias}' names the same directory as 'layer'")
        assert not (tmp_path / "layer").exists()
    assert tree_state(canary) == before
    run_cli("nix-layer", "--job", layer_job(("layer", store_layer(app)), ("x/layer", store_layer(etc))), cwd=tmp_path)
    a = json.loads((tmp_path / "layer" / "layer.json").read_bytes())
    b = json.loads((tmp_path / "x" / "layer" / "layer.json").read_bytes())
    assert a["descriptor"]["digest"] != b["descriptor"]["digest"]


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"Labels": {"org.example.note": "one\nTWO=forged"}}, ["label 'org.example.note'", "control characters"]),
        ({"Labels": {"ok": "x\x1b[31m"}}, ["label 'ok'", "control characters"]),
        ({"Env": ["PATH=/bin", "LONELY"]}, ["Env entry 'LONELY' is not NAME=VALUE"]),
        ({"Env": ["=value"]}, ["Env entry '=value' is not NAME=VALUE"]),
    ],
)
def test_a_base_config_breaking_the_option_rules_is_not_inherited(
    tmp_path: Path, config: dict[str, object], needles: list[str]
) -> None:
    base = tmp_path / "base"
    write_layout(base, [], ref="v1", config={"config": {"Entrypoint": ["/bin/true"], **config}})
    out = tmp_path / "out"
    proc = nix_image("--store-path", build("app"), "--from-image", f"{base}:v1", "--out", out, check=False)
    assert_one_line_error(proc, f"--from-image {base}:v1: config", *needles)
    assert not out.exists()
