"""Optional backend: find Python interpreters without starting Pex (see ``rules``).

Enable with ``backend_packages = [..., "layerforge_pants.search_path_python"]``. It is a Pants
``PythonProvider``, so it cannot be combined with another provider backend (pyenv, ...).
"""

from __future__ import annotations

from pants.backend.python.util_rules.pex import PythonProvider
from pants.engine.unions import UnionRule

from layerforge_pants.search_path_python import provider_rules
from layerforge_pants.search_path_python.rules import SearchPathPythonProvider


def rules() -> list[object]:
    return [*provider_rules.rules(), UnionRule(PythonProvider, SearchPathPythonProvider)]
