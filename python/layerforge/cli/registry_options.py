"""The settings every command that pushes or pulls reads the same way: its `--jobs` and
`--retries` (the request timeout comes from the environment:
:func:`layerforge.registry.transport.request_timeout`)."""

from __future__ import annotations

import argparse

from layerforge.option_flags import checked


def jobs_and_retries(args: argparse.Namespace) -> tuple[int, int]:
    return int(checked("--jobs", "push.jobs", args.jobs)), int(checked("--retries", "push.retries", args.retries))
