"""The part of Pants' Python backend the layerforge tool needs: building a PEX from a locked
resolve (`[layerforge].install_from_resolve`), the `python_requirement` target that declares
it, and `generate-lockfiles` for it. Registering only these, instead of the whole backend
(test runners, dependency inference, packaging, ...), halves Pants' start-up where the
repository has no Python code of its own; enabling `pants.backend.python` as well is fine."""

from __future__ import annotations

from pants.backend.python import target_types_rules
from pants.backend.python.goals import lockfile
from pants.backend.python.target_types import PythonRequirementTarget
from pants.backend.python.util_rules import pex, pex_from_targets


def target_types() -> list[type]:
    return [PythonRequirementTarget]


def rules() -> list[object]:
    return [*target_types_rules.rules(), *pex.rules(), *pex_from_targets.rules(), *lockfile.rules()]
