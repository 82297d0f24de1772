"""The layerforge Pants backend: image targets, `package`, `publish` and `run`, on Pants 2.17
and on current Pants (2.30+, call-by-name): see goals/engine/.

Enable with ``backend_packages = ["layerforge_pants"]`` and ``pants-plugins`` on the plugin
``pythonpath``; install the tool from a resolve (``[layerforge].install_from_resolve``).

One folder per image kind (target, package and run field sets, rules); `goals/` holds what
every kind shares (the tool process, image dependencies, package, publish, run). A new kind is
a folder and a line in `kinds.py`.
"""

from __future__ import annotations

from layerforge_pants import kinds
from layerforge_pants.goals import (
    dependency_rules,
    logged_process_rules,
    publish,
    publish_rules,
    pull_rules,
    python_support,
    run_rules,
    tool_rules,
)
from layerforge_pants.goals.subsystem import Layerforge


def target_types() -> list[type]:
    return [*kinds.KINDS, *python_support.target_types()]


def rules() -> list[object]:
    return [
        *python_support.rules(),
        *Layerforge.rules(),
        *tool_rules.rules(),
        *logged_process_rules.rules(),
        *pull_rules.rules(),
        *dependency_rules.rules(),
        *run_rules.rules(),
        *(rule for kind in kinds.KINDS for rule in kinds.rules_module(kind).rules()),
        *publish.rules(),
        *publish_rules.rules(),
    ]
