"""The search-path Python provider's rule (see `rules.py`)."""

from __future__ import annotations

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.core.subsystems.python_bootstrap import PythonBootstrap
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel

from layerforge_pants.goals import engine
from layerforge_pants.goals.engine import EnvironmentTarget
from layerforge_pants.search_path_python.rules import (
    SearchPathPythonProvider,
    candidates,
    chosen,
    identify,
    not_found,
    version_requests,
)


@rule(desc="Find a Python interpreter on the search path", level=LogLevel.DEBUG)
async def search_path_python(
    request: SearchPathPythonProvider,
    bootstrap: PythonBootstrap,
    python_setup: PythonSetup,
    env_target: EnvironmentTarget,
) -> PythonExecutable:
    found = await engine.find_binaries(version_requests(request, bootstrap, python_setup))
    checked: list[str] = []
    for candidate in candidates(found):
        process = identify(candidate, env_target.executable_search_path_cache_scope())
        python = chosen(request, candidate, await engine.execute(process), checked)
        if python is not None:
            return python
    raise not_found(request, bootstrap, python_setup, checked)


def rules() -> list[object]:
    return [*collect_rules()]
