"""The one ``--perms`` grammar the tool and the Pants field use (no Nix, no Pants run)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from layerforge.errors import UsageError
from layerforge.images.nix.perms import PERM_GRAMMAR, parse_perms

PLUGIN = Path(__file__).parent.parent / "pants-plugins" / "layerforge_pants"


def plugin_literal(module: str, name: str) -> object:
    """The literal value the plugin module assigns to ``name`` at top level, read from its source."""
    tree = ast.parse((PLUGIN / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module}.py assigns no {name}")


#: Rules both former readers were tested with (the Pants field and the tool's --perms), and
#: the edges between them: whether a rule is accepted (with names for owner and group).
PERM_CASES = [
    ("/nix/store/.*-app/bin/.*=0755", True),
    ("/nix/store/.*-app/var(/.*)?=0755:app:app", True),
    ("/nix/store/.*-app/bin(/.*)?=0750:1000:100", True),
    ("x=:0:0", True),
    ("x=755", True),
    ("a=b=0644", True),
    ("x=", False),
    ("x=:", False),
    ("x=0755:1", False),
    ("x=0755:1:2:3", False),
    ("x=75", False),
    ("x=07555", False),
    ("x=0855", False),
    ("=0755", False),
    ("no-equals", False),
    ("x=0755\n", False),
]


def tool_accepts(rule: str) -> bool:
    try:
        parse_perms([rule])
    except UsageError:
        return False
    return True


def test_the_plugin_and_the_tool_share_one_perms_grammar() -> None:
    plugin_grammar = plugin_literal("nix_target", "PERM_GRAMMAR")
    assert plugin_grammar == PERM_GRAMMAR, "nix_target.py restates the tool's grammar character for character"
    assert isinstance(plugin_grammar, str)
    plugin = re.compile(plugin_grammar)
    for rule, accepted in PERM_CASES:
        assert (tool_accepts(rule), bool(plugin.match(rule))) == (accepted, accepted), rule


def test_a_rule_reads_back_from_its_argument() -> None:
    for rule, accepted in PERM_CASES:
        if accepted:
            (spec,) = parse_perms([rule])
            assert parse_perms([spec.to_arg()]) == (spec,), rule
