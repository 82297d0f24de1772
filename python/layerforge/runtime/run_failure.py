"""A container runtime's own failure to run an image, as one line: which runtime, what it was
asked to run, its error, and, for a failure with a known cause, the setting that fixes it.
docker run(1) and podman-run(1) exit 125 when the runtime itself failed, 126 when the
container's command could not be invoked and 127 when it was not found; a container may exit
with those too, so the line is written only when the runtime also wrote its own error (a line
starting ``Error``, or docker's ``docker: Error``). Any other status is the container's own and
is passed on without a word."""

from __future__ import annotations

import re

from layerforge.runtime.option_names import run_option_example
from layerforge.trust.text import shown

RUNTIME_FAILED = (125, 126, 127)
_RLIMIT = re.compile(r"error setting rlimit type (\d+)")
#: Linux resource numbers runc names (RLIMIT_NPROC is 6, RLIMIT_NOFILE 7), by `--ulimit` name.
_RLIMIT_NAMES = {"6": "nproc", "7": "nofile"}


_ERROR = re.compile(r"^(?:docker: )?Error\b")


def runtime_error(stderr: str) -> str | None:
    """The runtime's own error: the last line of ``stderr`` it starts with ``Error``."""
    errors = [line.strip() for line in stderr.splitlines() if _ERROR.match(line.strip())]
    return errors[-1] if errors else None


def failure_line(kind: str, image: str, status: int, stderr: str) -> str | None:
    """The one line for the runtime ``kind`` failing to run ``image`` with ``status`` and
    ``stderr``, or None when the status is the container's own."""
    error = runtime_error(stderr)
    if status not in RUNTIME_FAILED or error is None:
        return None
    line = f"{kind} could not run {image} (exit {status}): {shown(error)}"
    m = _RLIMIT.search(stderr)
    if m:
        name = _RLIMIT_NAMES.get(m.group(1), m.group(1))
        line += (
            f"; the host's hard limit for {name} is below what the container asks: "
            f"set a lower one, e.g. {run_option_example(f'--ulimit={name}=1024:1024')}"
        )
    return line
