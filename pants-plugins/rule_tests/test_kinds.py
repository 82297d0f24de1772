"""Image kinds are registered once (`kinds.py`) and every list of the kinds a field accepts
derives from the roles their target classes declare: no module names a kind by its alias
string except the target that defines it."""

from __future__ import annotations

import ast
from pathlib import Path

from layerforge_pants import kinds, register
from layerforge_pants.goals import roles
from layerforge_pants.index.target import IndexImagesField

PLUGIN = Path(kinds.__file__).parent


def test_each_kind_is_registered_with_its_rules() -> None:
    assert [k.alias for k in kinds.KINDS] == [
        "nix_oci_image", "remote_oci_image", "oci_image_index", "nydus_image", "unikraft_image",
    ]  # fmt: skip
    assert set(kinds.KINDS) <= set(register.target_types())
    for kind in kinds.KINDS:
        module = kinds.rules_module(kind)
        assert module.__name__ == kind.__module__.replace(".target", ".rules")
        assert module.rules(), kind.alias


def test_kind_lists_derive_from_the_roles() -> None:
    assert roles.allowed(roles.BASE) == ("nix_oci_image", "remote_oci_image")
    assert roles.allowed(roles.NYDUS_SOURCE) == ("nix_oci_image", "remote_oci_image", "oci_image_index")
    assert roles.allowed(roles.INDEX_ENTRY) == ("nix_oci_image", "remote_oci_image", "oci_image_index", "nydus_image")
    assert roles.allowed(roles.IMAGE) == ("nix_oci_image", "remote_oci_image", "nydus_image", "unikraft_image")
    help_text = IndexImagesField.help() if callable(IndexImagesField.help) else IndexImagesField.help
    assert "`nix_oci_image`, `remote_oci_image`, `oci_image_index`, `nydus_image`" in help_text


def test_no_module_restates_a_kind_alias() -> None:
    aliases = {k.alias for k in kinds.KINDS}
    found = []
    for path in PLUGIN.rglob("*.py"):
        tree = ast.parse(path.read_text())
        own = {  # a target's own `alias = "..."`
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "alias" for t in node.targets)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in aliases and id(node) not in own:
                found.append(f"{path.relative_to(PLUGIN)}:{node.lineno} {node.value}")
    assert not found, found
