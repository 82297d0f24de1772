"""The layerforge Pants backend: image targets, `package`, `publish` and `run`, on Pants 2.17
and on current Pants (2.30+, call-by-name): see engine.py.

Enable with ``backend_packages = ["layerforge_pants"]`` and ``pants-plugins`` on the plugin
``pythonpath``; install the tool from a resolve (``[layerforge].install_from_resolve``).
"""

from __future__ import annotations

from layerforge_pants import (
    engine,
    index_package,
    index_run,
    nix_package,
    nix_run,
    nydus_package,
    publish,
    python_support,
    remote_run,
    unikraft_package,
    unikraft_run,
)
from layerforge_pants.index_target import OciImageIndexTarget
from layerforge_pants.nix_target import NixOciImageTarget
from layerforge_pants.nydus_target import NydusImageTarget
from layerforge_pants.remote_target import RemoteOciImageTarget
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.unikraft_target import UnikraftImageTarget


def target_types() -> list[type]:
    return [
        NixOciImageTarget,
        UnikraftImageTarget,
        NydusImageTarget,
        RemoteOciImageTarget,
        OciImageIndexTarget,
        *python_support.target_types(),
    ]


def rules() -> list[object]:
    return [
        *python_support.rules(),
        *Layerforge.rules(),
        *engine.rules_module().rules(),
        # The union memberships of the field sets, the same on every Pants.
        *nix_package.rules(),
        *nix_run.rules(),
        *unikraft_package.rules(),
        *unikraft_run.rules(),
        *nydus_package.rules(),
        *remote_run.rules(),
        *index_package.rules(),
        *index_run.rules(),
        *publish.rules(),
    ]
