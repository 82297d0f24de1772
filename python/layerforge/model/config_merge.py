"""Merging a base image's runtime config with the one being built, as Docker does for
``FROM``: the child's settings win, the base's are kept where the child says nothing."""

from __future__ import annotations

from layerforge.errors import LayerforgeError
from layerforge.model.image_config import RuntimeConfig
from layerforge.trust.text import has_control, shown


def merge_env(base: tuple[str, ...], child: tuple[str, ...]) -> tuple[str, ...]:
    """Base order kept, values replaced by the child's, new keys appended in child order."""
    merged: dict[str, str] = {}
    for e in (*base, *child):
        key, _, value = e.partition("=")
        merged[key] = value
    return tuple(f"{k}={v}" for k, v in merged.items())


def check_inheritable(base: RuntimeConfig, where: str) -> None:
    """What a new image takes over from ``base`` (named ``where`` in errors) obeys the rules its
    own options do (``--env``, ``--label``): every ``Env`` entry is ``NAME=VALUE``, and no label
    value holds control characters (a newline would forge lines where the config is shown)."""
    for e in base.env:
        if "=" not in e or e.startswith("="):
            raise LayerforgeError(f"{where}: config Env entry {shown(repr(e), 200)} is not NAME=VALUE")
    for key, value in sorted(base.labels.items()):
        if has_control(value):
            raise LayerforgeError(
                f"{where}: config label {shown(repr(key), 200)} has control characters in its value "
                f"{shown(repr(value), 200)}"
            )


def merge_runtime(base: RuntimeConfig, child: RuntimeConfig, where: str = "base image") -> RuntimeConfig:
    """``child`` on top of ``base`` (checked by :func:`check_inheritable` first)."""
    check_inheritable(base, where)
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
