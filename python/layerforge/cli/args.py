"""Parsing helpers shared by subcommands; errors name the option and the bad value."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence

from layerforge.errors import UsageError
from layerforge.model.image_config import RuntimeConfig
from layerforge.option_flags import default, high, int_type
from layerforge.trust.text import has_control, shown

_ENV_KEY = re.compile(r"^[^=\s]+\Z")
_PORT = re.compile(r"^[0-9]{1,5}(?:/(?:tcp|udp|sctp))?\Z")


#: ``--threads N``: 0 (one per core) up to the table's limit (an argparse type).
thread_count = int_type("layer.threads")


def add_threads_option(p: argparse.ArgumentParser | argparse._ArgumentGroup, help: str | None = None) -> None:
    p.add_argument(
        "--threads",
        type=thread_count,
        default=int(default("layer.threads")),
        metavar="N",
        help=help if help is not None else f"worker threads (default: one per core, at most {high('layer.threads')})",
    )


def one_line(value: str | None, option: str) -> str | None:
    """``value`` unless it holds control characters (newlines would forge config lines)."""
    if value is not None and has_control(value):
        raise UsageError(option, f"{shown(repr(value), 200)} has control characters")
    return value


def key_values(values: Sequence[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or ():
        one_line(v, option)
        key, sep, val = v.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise UsageError(option, f"{shown(repr(v), 200)} is not of the form KEY=VALUE")
        out[key] = val
    return out


def env_list(values: Sequence[str] | None, option: str = "--env") -> tuple[str, ...]:
    """``KEY=VALUE`` strings, last one of a key wins, order of first appearance kept; no
    control characters (a newline in a value would forge another variable)."""
    return tuple(f"{k}={v}" for k, v in key_values(values, option).items())


def argv_list(values: Sequence[str] | None, option: str) -> tuple[str, ...] | None:
    """An argv given as words (``--cmd a b``) or as one JSON array (``--cmd '["a","-b"]'``)."""
    if values is None:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            parsed = json.loads(values[0])
        except ValueError as e:
            raise UsageError(option, f"{values[0]!r} is not a JSON array of strings ({e})") from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise UsageError(option, f"{values[0]!r} is not a JSON array of strings")
        return tuple(parsed)
    return tuple(values)


def absolute_path(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    if not value.startswith("/"):
        raise UsageError(option, f"{shown(repr(value), 200)} must be an absolute path")
    return value


def ports(values: Sequence[str] | None, option: str = "--expose") -> tuple[str, ...]:
    out = set()
    for v in values or ():
        if not _PORT.match(v) or not 0 < int(v.split("/")[0]) < 65536:
            raise UsageError(option, f"{shown(repr(v), 100)} is not a port like 8080 or 53/udp")
        out.add(v if "/" in v else f"{v}/tcp")
    return tuple(sorted(out))


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("container configuration")
    g.add_argument("--entrypoint", nargs="+", metavar="ARG", help="entrypoint argv (words, or one JSON array)")
    g.add_argument("--cmd", nargs="+", metavar="ARG", help="default arguments (words, or one JSON array)")
    g.add_argument("--env", action="append", metavar="K=V", help="environment variable (repeatable)")
    g.add_argument("--workdir", metavar="PATH", help="working directory (absolute)")
    g.add_argument("--user", metavar="USER", help="user[:group] to run as")
    g.add_argument("--label", action="append", metavar="K=V", help="image label (repeatable)")
    g.add_argument("--expose", action="append", metavar="PORT[/PROTO]", help="exposed port (repeatable)")
    g.add_argument("--volume", action="append", metavar="PATH", help="volume mount point (repeatable)")
    g.add_argument("--stop-signal", metavar="SIGNAL", help="signal that stops the container")


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    volumes = tuple(sorted({absolute_path(v, "--volume") or "" for v in args.volume or ()}))
    return RuntimeConfig(
        entrypoint=argv_list(args.entrypoint, "--entrypoint"),
        cmd=argv_list(args.cmd, "--cmd"),
        env=env_list(args.env),
        working_dir=one_line(absolute_path(args.workdir, "--workdir"), "--workdir"),
        user=one_line(args.user, "--user"),
        labels=key_values(args.label, "--label"),
        exposed_ports=ports(args.expose),
        volumes=tuple(one_line(v, "--volume") or "" for v in volumes),
        stop_signal=one_line(args.stop_signal, "--stop-signal"),
    )
