"""The search-path Python provider's rule (Pants 2.30+: call-by-name); see search_path_python."""

from __future__ import annotations

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.core.environments.target_types import EnvironmentTarget
from pants.core.subsystems.python_bootstrap import PythonBootstrap
from pants.core.util_rules.system_binaries import find_binary
from pants.engine.intrinsics import execute_process
from pants.engine.rules import collect_rules, concurrently, implicitly, rule
from pants.util.logging import LogLevel

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
    requests = version_requests(request, bootstrap, python_setup)
    found = await concurrently(find_binary(r, **implicitly()) for r in requests)
    checked: list[str] = []
    for candidate in candidates(found):
        process = identify(candidate, env_target.executable_search_path_cache_scope())
        python = chosen(request, candidate, await execute_process(process, **implicitly()), checked)
        if python is not None:
            return python
    raise not_found(request, bootstrap, python_setup, checked)


def rules():
    return collect_rules()
