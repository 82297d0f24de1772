"""The layerforge Pants backend: image targets, `package`, `publish` and `run`.

Enable with ``backend_packages = ["layerforge_pants"]`` and ``pants-plugins`` on the plugin
``pythonpath``; install the tool from a resolve (``[layerforge].install_from_resolve``).
"""

from __future__ import annotations

from layerforge_pants import (
    image_dependency,
    image_run,
    index_package,
    index_run,
    nix_eval,
    nix_package,
    nix_run,
    nydus_package,
    publish,
    python_support,
    remote_pull,
    remote_run,
    tool,
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
        *tool.rules(),
        *image_dependency.rules(),
        *nix_eval.rules(),
        *nix_package.rules(),
        *image_run.rules(),
        *nix_run.rules(),
        *unikraft_package.rules(),
        *unikraft_run.rules(),
        *nydus_package.rules(),
        *remote_pull.rules(),
        *remote_run.rules(),
        *index_package.rules(),
        *index_run.rules(),
        *publish.rules(),
    ]
