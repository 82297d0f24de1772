"""The settings every command that talks to registries reads the same way: its `--jobs` and
`--retries`, and the request timeout from the environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from layerforge.option_flags import checked
from layerforge.registry.transport import DEFAULT_TIMEOUT, TIMEOUT_ENV


def jobs_and_retries(args: argparse.Namespace) -> tuple[int, int]:
    return int(checked("--jobs", "push.jobs", args.jobs)), int(checked("--retries", "push.retries", args.retries))


def timeout(environ: Mapping[str, str]) -> float:
    value = environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT
    return float(checked(TIMEOUT_ENV, "registry.timeout", value))
