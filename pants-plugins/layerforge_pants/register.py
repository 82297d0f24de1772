"""The layerforge Pants backend: image targets, `package` and `publish`.

Enable with ``backend_packages = ["layerforge_pants"]`` and ``pants-plugins`` on the plugin
``pythonpath``; install the tool from a resolve (``[layerforge].install_from_resolve``).
"""

from __future__ import annotations

from layerforge_pants import base_image, nix_package, publish, tool
from layerforge_pants.subsystem import Layerforge
from layerforge_pants.target_types import NixOciImageTarget


def target_types() -> list[type]:
    return [NixOciImageTarget]


def rules() -> list[object]:
    return [*Layerforge.rules(), *tool.rules(), *base_image.rules(), *nix_package.rules(), *publish.rules()]
