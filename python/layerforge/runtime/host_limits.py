"""The host's resource limits for containers podman starts. Rootful podman gives a container
RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 4194304 unless told otherwise (it lowers them to the
host's hard limits only when rootless); where the host's hard limit is lower and raising it
is not permitted, runc fails to start the container (``error setting rlimit type 7:
operation not permitted``). Such limits are passed as the host's hard limits instead, as
rootless podman does, unless the user's run options set them; RLIMIT_NPROC no higher than
the kernel's ``pid_max`` (no more processes can exist, and runc was refused anything above it
on these hosts, whose hard limit is three times that)."""

from __future__ import annotations

import resource
from collections.abc import Sequence
from pathlib import Path

#: Rootful podman's defaults, by `--ulimit` name: the resource and the value podman asks for.
PODMAN_DEFAULTS = {
    "nofile": (resource.RLIMIT_NOFILE, 1048576),
    "nproc": (resource.RLIMIT_NPROC, 4194304),
}


def ulimits_set(run_options: Sequence[str]) -> set[str]:
    """The `--ulimit` names the run options set (``--ulimit=nofile=...`` or ``--ulimit nofile=...``)."""
    names = set()
    for i, arg in enumerate(run_options):
        value = arg.removeprefix("--ulimit=") if arg.startswith("--ulimit=") else None
        if arg == "--ulimit" and i + 1 < len(run_options):
            value = run_options[i + 1]
        if value:
            names.add(value.split("=", 1)[0])
    return names


def host_ulimit_options(kind: str, run_options: Sequence[str]) -> list[str]:
    """`--ulimit` arguments giving a podman container the host's hard limits where podman's
    default exceeds them; none for docker (its daemon's limits apply) or what the user set."""
    if kind != "podman":
        return []
    given = ulimits_set(run_options)
    options = []
    for name, (which, default) in PODMAN_DEFAULTS.items():
        hard = resource.getrlimit(which)[1]
        if name == "nproc":
            hard = min(hard, pid_max()) if hard != resource.RLIM_INFINITY else pid_max()
        if name not in given and hard != resource.RLIM_INFINITY and hard < default:
            options.append(f"--ulimit={name}={hard}:{hard}")
    return options


def pid_max() -> int:
    """The kernel's highest process id plus one (``/proc/sys/kernel/pid_max``; Linux's
    default, 32768, if unreadable)."""
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        return 32768
