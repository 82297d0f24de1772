"""Optional backend: find Python interpreters without starting Pex (see ``rules``).

Enable with ``backend_packages = [..., "layerforge_pants.search_path_python"]``. It is a Pants
``PythonProvider``, so it cannot be combined with another provider backend (pyenv, ...).
"""

from __future__ import annotations

from layerforge_pants.search_path_python import rules as search_path_rules


def rules() -> list[object]:
    return list(search_path_rules.rules())
