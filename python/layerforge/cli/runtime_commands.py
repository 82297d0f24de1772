"""``layerforge load LAYOUT[:REF]`` and ``layerforge run LAYOUT[:REF] [-- ARGS]``: an image of a
layout in the machine's container runtime (docker when its daemon answers, else podman)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from layerforge.model.reference import parse_layout_ref
from layerforge.runtime.choice import Runtime, choose_runtime
from layerforge.runtime.load import LoadedImage, load_image


def register(sub: Any) -> None:
    load = sub.add_parser(
        "load",
        help="load an image into docker or podman, tagged NAME:TAG",
        description="Load LAYOUT[:REF] into the container runtime. Layers the runtime already holds are "
        "not sent again (podman); the image is tagged with --tag, or the layout's io.containerd.image.name, "
        "or REF when it is a NAME:TAG.",
    )
    _common(load)
    load.set_defaults(run=run_load)
    run = sub.add_parser(
        "run",
        help="load an image and run it (interactively on a terminal), returning its exit status",
        description="Load LAYOUT[:REF] as `layerforge load` does, then `RUNTIME run --rm -i [-t] "
        "[--run-option...] NAME:TAG ARGS`; -t when stdin and stdout are terminals. Options go before "
        "LAYOUT[:REF]; everything after it (after `--`, if given) is passed to the image.",
    )
    _common(run)
    run.add_argument(
        "--run-option",
        action="append",
        default=[],
        metavar="=ARG",
        help="extra argument of `run` (repeatable; write --run-option=--network=none)",
    )
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the image")
    run.set_defaults(run=run_run)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="LAYOUT[:REF]")
    p.add_argument("--runtime", metavar="docker|podman|PATH", help="runtime (default: $LAYERFORGE_RUNTIME, else "
                   "docker when its daemon answers, else podman)")  # fmt: skip
    p.add_argument(
        "--runtime-option",
        action="append",
        default=[],
        metavar="=ARG",
        help="global argument of the runtime, before its subcommand (repeatable; --runtime-option=--root=/x)",
    )
    p.add_argument("--tag", action="append", default=[], metavar="NAME:TAG", help="name in the runtime (repeatable)")
    p.add_argument("--platform", metavar="OS/ARCH", help="image of a multi-platform index (default: the host's)")


def _load(args: argparse.Namespace) -> tuple[Runtime, LoadedImage]:
    runtime = choose_runtime(args.runtime, args.runtime_option)
    loaded = load_image(runtime, parse_layout_ref(args.target), tags=args.tag, platform=args.platform)
    return runtime, loaded


def run_load(args: argparse.Namespace) -> int:
    runtime, loaded = _load(args)
    print(f"{runtime.kind} {' '.join(loaded.names)} sha256:{loaded.image_id}")
    return 0


def run_run(args: argparse.Namespace) -> NoReturn:
    runtime, loaded = _load(args)
    image_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    tty = ["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else []
    argv = runtime.argv("run", "--rm", "-i", *tty, *args.run_option, loaded.names[0], *image_args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(runtime.executable, argv)
