"""How the runtime commands' settings are named to the user who set them: the command line's
flags, or, when the Pants backend runs the command (`pants run`, which sets
``LAYERFORGE_OPTION_NAMES=pants``), the `[layerforge]` options they come from."""

from __future__ import annotations

import os

#: Set by the Pants backend for the commands `pants run` starts.
ENV = "LAYERFORGE_OPTION_NAMES"
PANTS_NAMES = {
    "--runtime": "[layerforge].runtime",
    "--runtime-option": "[layerforge].runtime_options",
    "--run-option": "[layerforge].run_options",
}


def option_name(flag: str) -> str:
    """``flag`` as the user set it: itself, or its Pants option under Pants."""
    return PANTS_NAMES.get(flag, flag) if os.environ.get(ENV) == "pants" else flag


def run_option_example(arg: str) -> str:
    """How to add the runtime-run argument ``arg``, in the user's own terms."""
    if os.environ.get(ENV) == "pants":
        return f'[layerforge].run_options = ["{arg}"]'
    return f"--run-option={arg}"
