"""The plugin's fields and argv builders under Pants' RuleRunner (pantsbuild.pants.testutil),
on the interpreter Pants runs on: BUILD files parsed by the real engine, no Pants run, no
process. Run by tests/test_pants_rules.py (the fast tier) in .venv-pants, which
scripts/test builds. Field cases come from tests/vectors/option_rules.json, the cases the
tool's table and the native core are held to as well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from build_files import backend_rule_runner, parsed_target, refused
from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException
from pants.testutil.rule_runner import RuleRunner

from layerforge_pants.goals import naming
from layerforge_pants.goals.package import config_argv
from layerforge_pants.goals.target_types import CmdField, EnvField, LabelsField
from layerforge_pants.nix.package import NixOciImageFieldSet

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "option_rules.json"
CASES = json.loads(VECTORS.read_text())["cases"]
STORE_PATH = "/nix/store/" + "a" * 32 + "-app"

#: rule -> (target kind, field, the rest of the target's arguments)
FIELDS = {
    "nydus.chunk_size": ("nydus_image", "chunk_size", 'source_image=":a"'),
    "nydus.compressor": ("nydus_image", "compressor", 'source_image=":a"'),
    "nydus.digester": ("nydus_image", "digester", 'source_image=":a"'),
    "nix.max_layers": ("nix_oci_image", "max_layers", f'store_paths=["{STORE_PATH}"]'),
    "nix.layering": ("nix_oci_image", "layering", f'store_paths=["{STORE_PATH}"]'),
    "layer.compression": ("nix_oci_image", "compression", f'store_paths=["{STORE_PATH}"]'),
    "unikraft.initrd_compression": (
        "unikraft_image",
        "initrd_compression",
        'kernel="k", arch="x86_64", plat="qemu"',
    ),
}


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    return backend_rule_runner()


def _cases(*rules: str) -> list[dict[str, Any]]:
    return [c for c in CASES if c["rule"] in rules and not isinstance(c["value"], bool)]


def _id(case: dict[str, Any]) -> str:
    return f"{case['rule']}={case['value']!r}"


@pytest.mark.parametrize("case", _cases(*FIELDS), ids=_id)
def test_fields_follow_the_option_rules(rule_runner: RuleRunner, case: dict[str, Any]) -> None:
    kind, field, rest = FIELDS[case["rule"]]
    build = f'{kind}(name="x", {rest}, {field}={case["value"]!r})'
    if case["ok"]:
        target = parsed_target(rule_runner, build)
        assert any(f.alias == field and f.value == case["value"] for f in target.field_values.values())
        return
    line = refused(rule_runner, build)  # the table's words, or Pants' own for a choice
    assert field in line and "src:x" in line and repr(case["value"]) in line, line
    assert "--" not in line.split("src:x", 1)[1], "fields, not flags, are named"


@pytest.mark.parametrize("case", _cases("nydus.prefetch"), ids=_id)
def test_prefetch_paths_follow_the_option_rules(rule_runner: RuleRunner, case: dict[str, Any]) -> None:
    build = f'nydus_image(name="x", source_image=":a", prefetch=["/", {case["value"]!r}])'
    if case["ok"]:
        parsed_target(rule_runner, build)
    else:
        assert "The `prefetch` field of src:x" in refused(rule_runner, build)


@pytest.mark.parametrize("case", _cases("layer.level"), ids=lambda c: f"{c['compression']}:{c['value']}")
def test_compression_levels_follow_the_option_rules(rule_runner: RuleRunner, case: dict[str, Any]) -> None:
    level = "" if case["value"] is None else f", compression_level={case['value']}"
    build = f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], compression="{case["compression"]}"{level})'
    if case["ok"]:
        parsed_target(rule_runner, build)
    else:
        assert "The `compression_level` field of src:x" in refused(rule_runner, build)


@pytest.mark.parametrize("case", _cases("image.tag", "image.repository"), ids=_id)
def test_tags_and_repositories_follow_the_option_rules(case: dict[str, Any]) -> None:
    address = Address("src", target_name="x")
    value = case["value"].replace("{", "{{").replace("}", "}}")
    check = naming.image_tags if case["rule"] == "image.tag" else naming.repository
    arg: Any = (value,) if case["rule"] == "image.tag" else value
    if case["ok"]:
        check(arg, address, {})
        return
    with pytest.raises(InvalidFieldException) as e:
        check(arg, address, {})
    assert "src:x" in str(e.value) and ("image_tags" in str(e.value) or "repository" in str(e.value))


def test_config_argv_is_sorted_and_stable(rule_runner: RuleRunner) -> None:
    target = parsed_target(
        rule_runner,
        f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], cmd=["--a", "b"], '
        'env={"Z": "1", "A": "2=3"}, labels={"org.b": "x", "org.a": "y"})',
    )
    argv = config_argv(target[CmdField], target[EnvField], target[LabelsField])
    assert argv == ['--cmd=["--a", "b"]', "--env=A=2=3", "--env=Z=1", "--label=org.a=y", "--label=org.b=x"]


def test_plan_argv_carries_the_fields(rule_runner: RuleRunner) -> None:
    target = parsed_target(
        rule_runner,
        f'nix_oci_image(name="x", store_paths=["{STORE_PATH}"], max_layers=7, layering="per-path", '
        'compression="zstd", compression_level=19, arch="arm64", sbom=True)',
    )
    argv = NixOciImageFieldSet.create(target).plan_argv("1.0", (), ())
    pairs = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
    assert argv[0] == "nix-plan"
    assert pairs["--max-layers"] == "7" and pairs["--layering"] == "per-path" and pairs["--tag"] == "1.0"
    assert pairs["--compression"] == "zstd" and pairs["--level"] == "19"
    assert pairs["--arch"] == "arm64" and "--sbom" in argv
