"""``layerforge load LAYOUT[:REF]`` and ``layerforge run LAYOUT[:REF] [-- ARGS]``: an image of a
layout in the machine's container runtime (docker when its daemon answers, else podman)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from layerforge.model.reference import parse_layout_ref
from layerforge.runtime.choice import Runtime, choose_runtime
from layerforge.runtime.host_limits import host_ulimit_options
from layerforge.runtime.load import LoadedImage, load_image
from layerforge.runtime.run_failure import failure_line


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
        "LAYOUT[:REF]; everything after it (after `--`, if given) is passed to the image. The image's "
        "exit status is returned; when the runtime itself fails (exit 125-127) one line says which "
        "runtime, what it ran and, for a known cause, the setting that fixes it. podman gets the "
        "host's hard RLIMIT_NOFILE/NPROC where its defaults exceed them (unless --ulimit is given).",
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


def run_run(args: argparse.Namespace) -> int:
    runtime, loaded = _load(args)
    image_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    tty = ["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else []
    limits = host_ulimit_options(runtime.kind, args.run_option)
    argv = runtime.argv("run", "--rm", "-i", *tty, *limits, *args.run_option, loaded.names[0], *image_args)
    sys.stdout.flush()
    sys.stderr.flush()
    status, stderr = run_forwarding_stderr(runtime.executable, argv)
    line = failure_line(runtime.kind, loaded.names[0], status, stderr)
    if line is not None:
        print(f"layerforge run: {line}", file=sys.stderr)
    return status


def run_forwarding_stderr(executable: str, argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with this process's stdin and stdout, its stderr passed on as it comes and
    its last 64 KiB kept; its exit status (128 + N for a signal N, as a shell reports it) and
    that stderr. Interrupts reach the runtime (the terminal's process group) and this process
    waits for it."""
    kept = bytearray()
    with contextlib.ExitStack() as stack:
        for sig in (signal.SIGINT, signal.SIGQUIT):
            previous = signal.signal(sig, signal.SIG_IGN)
            stack.callback(signal.signal, sig, previous)
        proc = subprocess.Popen(argv, executable=executable, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 65536):
            os.write(sys.stderr.fileno(), chunk)
            kept = (kept + chunk)[-65536:]
        status = proc.wait()
    return (128 - status if status < 0 else status), kept.decode("utf-8", "replace")
