"""The two rules modules of the Pants backend cannot drift: `rules_gets` (Pants 2.17-2.29,
`Get`) and `rules_calls` (2.30+, call-by-name) declare the same rules and awaiting helpers,
with the same parameters and return types; shared modules hold no awaits. Read with `ast`,
without importing Pants (which of the two a Pants run loads depends on its version)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent.parent / "pants-plugins" / "layerforge_pants"
GETS, CALLS = PLUGIN / "rules_gets", PLUGIN / "rules_calls"


def _modules(package: Path) -> list[str]:
    return sorted(p.name for p in package.glob("*.py"))


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
    return {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)} | {
        alias.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) for alias in n.names
    }


def imported(path: Path) -> set[str]:
    return {n.module or "" for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}


def test_both_engines_have_the_same_modules() -> None:
    assert _modules(GETS) == _modules(CALLS)
    assert "tool.py" in _modules(GETS)


@pytest.mark.parametrize("module", _modules(GETS))
def test_the_same_rules_with_the_same_signatures(module: str) -> None:
    gets, calls = declared(GETS / module), declared(CALLS / module)
    assert gets == calls
    if module != "__init__.py":
        assert any(is_rule for is_rule, *_ in gets.values()), f"{module} declares no rule"


@pytest.mark.parametrize("module", _modules(GETS))
def test_each_engine_uses_only_its_own_idiom(module: str) -> None:
    assert not names_used(CALLS / module) & {"Get", "MultiGet", "Effect"}, f"rules_calls/{module} uses Get"
    assert not names_used(GETS / module) & {"implicitly", "concurrently"}, f"rules_gets/{module} calls by name"
    assert not any(m.startswith("layerforge_pants.rules_gets") for m in imported(CALLS / module))
    assert not any(m.startswith("layerforge_pants.rules_calls") for m in imported(GETS / module))


def test_shared_modules_do_not_await() -> None:
    """Everything engine-specific is in the rules modules: the rest loads on any Pants."""
    shared = [p for p in PLUGIN.rglob("*.py") if GETS not in p.parents and CALLS not in p.parents]
    assert len(shared) > 20
    for path in shared:
        tree = ast.parse(path.read_text())
        awaits = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Await)]
        assert not awaits, f"{path.relative_to(PLUGIN)} awaits on lines {awaits}"
        assert not names_used(path) & {"Get", "MultiGet", "implicitly", "concurrently"}, path


def test_the_checks_see_a_difference(tmp_path: Path) -> None:
    """What the comparison reads changes with a parameter's type (it is not vacuous)."""
    source = (CALLS / "tool.py").read_text()
    changed = source.replace("async def layerforge_env(tool: Layerforge,", "async def layerforge_env(tool: object,")
    assert changed != source
    (tmp_path / "tool.py").write_text(changed)
    assert declared(tmp_path / "tool.py") != declared(GETS / "tool.py")
    assert declared(CALLS / "tool.py") == declared(GETS / "tool.py")


def test_placeholder_lockfile_reads_as_pants_2_31_reads_it() -> None:
    """Pants 2.31 reads the tool's default lockfile resource for its help (comment lines
    dropped, then JSON); the version it finds is the subsystem's default version."""
    text = (PLUGIN / "layerforge.lock").read_text()
    lock = json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    (version,) = [r["version"] for res in lock["locked_resolves"] for r in res["locked_requirements"]]
    subsystem = (PLUGIN / "subsystem.py").read_text()
    assert f'default_version = "layerforge=={version}"' in subsystem
    assert [r["project_name"] for res in lock["locked_resolves"] for r in res["locked_requirements"]] == ["layerforge"]
