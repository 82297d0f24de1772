"""Merging a base image's runtime config with the one being built, as Docker does for
``FROM``: the child's settings win, the base's are kept where the child says nothing."""

from __future__ import annotations

from layerforge.model.image_config import RuntimeConfig


def merge_env(base: tuple[str, ...], child: tuple[str, ...]) -> tuple[str, ...]:
    """Base order kept, values replaced by the child's, new keys appended in child order."""
    merged: dict[str, str] = {}
    for e in (*base, *child):
        key, _, value = e.partition("=")
        merged[key] = value
    return tuple(f"{k}={v}" for k, v in merged.items())


def merge_runtime(base: RuntimeConfig, child: RuntimeConfig) -> RuntimeConfig:
    entrypoint = child.entrypoint if child.entrypoint is not None else base.entrypoint
    if child.cmd is not None:
        cmd = child.cmd
    elif child.entrypoint is not None:
        cmd = None  # a new entrypoint drops the inherited default arguments (Docker semantics)
    else:
        cmd = base.cmd
    return RuntimeConfig(
        entrypoint=entrypoint,
        cmd=cmd,
        env=merge_env(base.env, child.env),
        working_dir=child.working_dir or base.working_dir,
        user=child.user or base.user,
        labels={**base.labels, **child.labels},
        exposed_ports=tuple(sorted({*base.exposed_ports, *child.exposed_ports})),
        volumes=tuple(sorted({*base.volumes, *child.volumes})),
        stop_signal=child.stop_signal or base.stop_signal,
    )
