"""The one table of option rules (python/layerforge/option_rules.py) against the shared
vectors, for the tool and for the Pants plugin, which imports the same file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from layerforge import option_rules
from layerforge.option_rules import RuleError

ROOT = Path(__file__).parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "option_rules.json").read_text())["cases"]
PLUGIN_RULES = ROOT / "pants-plugins" / "layerforge_pants" / "goals" / "option_rules.py"


def _plugin_module() -> Any:
    spec = importlib.util.spec_from_file_location("layerforge_pants_option_rules", PLUGIN_RULES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


IMPLEMENTATIONS = {"tool": option_rules, "plugin": _plugin_module()}


def _run(module: Any, case: dict[str, Any]) -> Any:
    if case["rule"] == "layer.level":
        return module.check_level(case["compression"], case["value"])
    return module.check(case["rule"], case["value"])


def _id(case: dict[str, Any]) -> str:
    return f"{case['rule']}={case['value']!r}"


def test_the_plugin_ships_the_tools_table_byte_for_byte() -> None:
    """One table: the plugin's option_rules.py (a file of its own, so the plugin's wheel stands
    alone) is the tool's, byte for byte; after editing the tool's, copy it over."""
    tool = ROOT / "python" / "layerforge" / "option_rules.py"
    assert not PLUGIN_RULES.is_symlink()
    assert PLUGIN_RULES.read_bytes() == tool.read_bytes(), f"cp {tool} {PLUGIN_RULES}"


def test_every_rule_has_vectors() -> None:
    covered = {c["rule"] for c in VECTORS}
    assert covered == {*option_rules.RULES, "layer.level"}
    for rule in covered:
        assert {c["ok"] for c in VECTORS if c["rule"] == rule} == {True, False}, rule


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("case", VECTORS, ids=_id)
def test_vectors(impl: str, case: dict[str, Any]) -> None:
    module = IMPLEMENTATIONS[impl]
    if case["ok"]:
        assert _run(module, case) == case.get("normal", case["value"])
        return
    with pytest.raises(module.RuleError) as e:
        _run(module, case)
    message = str(e.value)
    assert "\n" not in message and "\x1b" not in message and "\u2028" not in message
    assert message.startswith(option_rules.shown_value(case["value"]))
    assert "--" not in message.split(" ", 1)[1], "the table names no flags"
    if "normal" in case:  # the grammar reads it; the bounds refuse it
        assert option_rules.parse_size(case["value"]) == case["normal"]
    elif case["rule"].endswith("chunk_size"):
        with pytest.raises(RuleError):
            option_rules.parse_size(case["value"])


def test_defaults_obey_their_rules() -> None:
    for name, rule in option_rules.RULES.items():
        if getattr(rule, "default", None) is None:
            continue
        value = option_rules.default(name)
        if name == "registry.timeout":
            value = f"{value:g}"
        assert option_rules.check(name, value) is not None, name
    for compression, level in option_rules.DEFAULT_LEVELS.items():
        assert option_rules.check_level(compression, level) == level
