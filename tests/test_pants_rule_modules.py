"""The Pants backend's rules are written once, over an engine adapter (`engine/`) that is the
only place the two Pants engine APIs differ: `engine/gets.py` (Pants 2.17-2.29, `Get`) and
`engine/calls.py` (2.30+, call-by-name) declare the same helpers with the same parameters and
return types, each in its own idiom; the rule modules hold no version branch and name neither
idiom. Read with `ast`, without importing Pants (which half a Pants run loads depends on its
version)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent.parent / "pants-plugins" / "layerforge_pants"
ENGINE = PLUGIN / "goals" / "engine"
GETS, CALLS = ENGINE / "gets.py", ENGINE / "calls.py"
#: The names of the two engine APIs: only the adapter's halves may use them.
GET_IDIOM = {"Get", "MultiGet", "Effect"}
CALL_IDIOM = {"implicitly", "concurrently"}


def _is_rule(node: ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "rule")
        or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "rule")
        for d in node.decorator_list
    )


def _annotation(arg: ast.arg) -> str | None:
    return ast.unparse(arg.annotation) if arg.annotation else None


def declared(path: Path) -> dict[str, tuple[object, ...]]:
    """Every top-level async function of ``path``: whether it is a rule, its decorators, its
    parameters (name, kind, annotation, default) and its return annotation."""
    out: dict[str, tuple[object, ...]] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.AsyncFunctionDef):
            a = node.args
            params = [
                *(("positional", p.arg, _annotation(p)) for p in a.args),
                *(("keyword", p.arg, _annotation(p)) for p in a.kwonlyargs),
                *((("*", a.vararg.arg, _annotation(a.vararg)),) if a.vararg else ()),
                ("defaults", tuple(ast.unparse(d) for d in a.defaults)),
            ]
            returns = ast.unparse(node.returns) if node.returns else None
            out[node.name] = (
                _is_rule(node),
                tuple(ast.unparse(d) for d in node.decorator_list),
                tuple(params),
                returns,
            )
    return out


def names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for alias in n.names
    }


def rule_modules() -> list[Path]:
    return sorted(p for p in PLUGIN.rglob("*.py") if ENGINE not in p.parents and any(
        _is_rule(n) for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.AsyncFunctionDef)
    ))  # fmt: skip


def test_both_halves_declare_the_same_helpers() -> None:
    gets, calls = declared(GETS), declared(CALLS)
    assert gets == calls
    assert len(gets) > 20 and not any(is_rule for is_rule, *_ in gets.values())
    assert all("EnvironmentTarget" in names_used(half) for half in (GETS, CALLS)), "both export the moved type"


def test_each_half_uses_only_its_own_idiom() -> None:
    assert not names_used(CALLS) & GET_IDIOM, "engine/calls.py uses Get"
    assert not names_used(GETS) & CALL_IDIOM, "engine/gets.py calls by name"


def test_rules_are_written_once_over_the_engine() -> None:
    """Every rule module awaits through `engine` and names neither idiom nor a Pants version;
    no module outside the adapter names them either."""
    modules = rule_modules()
    assert len(modules) >= 10, modules
    for path in PLUGIN.rglob("*.py"):
        if ENGINE in path.parents:
            continue
        used = names_used(path)
        assert not used & (GET_IDIOM | CALL_IDIOM), f"{path.relative_to(PLUGIN)} names an engine idiom"
        assert "PANTS_SEMVER" not in used and "CALL_BY_NAME" not in used, f"{path.relative_to(PLUGIN)} branches"
    for path in modules:
        assert "engine" in names_used(path), f"{path.relative_to(PLUGIN)} does not await through the engine"


def test_modules_await_only_through_the_engine() -> None:
    """Awaits live in rule modules and their helpers, over the engine; the rest is plain."""
    awaiting = []
    for path in PLUGIN.rglob("*.py"):
        if ENGINE in path.parents:
            continue
        if any(isinstance(n, ast.Await) for n in ast.walk(ast.parse(path.read_text()))):
            awaiting.append(path)
            assert "engine" in names_used(path), f"{path.relative_to(PLUGIN)} awaits, not through the engine"
    assert set(rule_modules()) <= set(awaiting)
    assert len(awaiting) <= len(rule_modules()) + 2, "helpers that await belong beside the rules that use them"


def test_the_checks_see_a_difference(tmp_path: Path) -> None:
    """What the comparison reads changes with a parameter's type (it is not vacuous)."""
    source = CALLS.read_text()
    changed = source.replace("async def execute(process: Process)", "async def execute(process: object)")
    assert changed != source
    (tmp_path / "calls.py").write_text(changed)
    assert declared(tmp_path / "calls.py") != declared(GETS)
    (tmp_path / "calls.py").write_text(source.replace("execute_process(p, **implicitly())", "Get(p)"))
    assert names_used(tmp_path / "calls.py") & GET_IDIOM


def test_placeholder_lockfile_reads_as_pants_2_31_reads_it() -> None:
    """Pants 2.31 reads the tool's default lockfile resource for its help (comment lines
    dropped, then JSON); the version it finds is the subsystem's default version."""
    text = (PLUGIN / "layerforge.lock").read_text()
    lock = json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    (version,) = [r["version"] for res in lock["locked_resolves"] for r in res["locked_requirements"]]
    subsystem = (PLUGIN / "goals" / "subsystem.py").read_text()
    assert f'default_version = "layerforge=={version}"' in subsystem
    assert [r["project_name"] for res in lock["locked_resolves"] for r in res["locked_requirements"]] == ["layerforge"]


def test_one_version_the_plugin_pins_the_tool_it_was_released_with() -> None:
    """The workspace's version (Cargo.toml, which maturin gives the wheel) is the one version:
    the plugin's subsystem, its default lockfile, its release check and this repository's
    requirement pin it."""
    root = PLUGIN.parent.parent
    text = (root / "Cargo.toml").read_text()
    version = text.split("[workspace.package]", 1)[1].split('version = "', 1)[1].split('"', 1)[0]
    subsystem = (PLUGIN / "goals" / "subsystem.py").read_text()
    assert f'default_version = "layerforge=={version}"' in subsystem
    assert f'default_requirements = ["layerforge=={version}"]' in subsystem
    assert f'"layerforge=={version}"' in (PLUGIN / "layerforge.lock").read_text()
    assert f'requirements=["layerforge=={version}"]' in (root / "BUILD").read_text()
    assert f'\nversion = "{version}"\n' in (root / "pants-plugins" / "pyproject.toml").read_text()
    assert f'\n__version__ = "{version}"\n' in (PLUGIN / "__init__.py").read_text(), "what goals/tool_release.py checks"
    assert f"\n## {version}\n" in (root / "CHANGELOG.md").read_text(), "each release has its CHANGELOG section"
