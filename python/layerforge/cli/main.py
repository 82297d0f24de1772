"""Entry point: ``layerforge <command> ...``.

Errors are one line on stderr naming the bad argument or input; exit status 2 for usage
errors, 1 for failed builds, 130 when interrupted. SIGTERM is handled like Ctrl-C: the native
core stops, scratch files are removed and the layout keeps its previous contents.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from layerforge import __version__, _native
from layerforge.cli import dir_image, export_docker, inspect, nix_image
from layerforge.errors import LayerforgeError, UsageError

COMMANDS = (dir_image, nix_image, inspect, export_docker)


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are a single line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="layerforge", description="Build reproducible OCI images fast.")
    parser.add_argument("--version", action="version", version=f"layerforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """Raised from the SIGTERM handler so that builds unwind like on Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split("\n")).strip() or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result: int = args.run(args)
        return result
    except UsageError as e:
        print(f"layerforge {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (LayerforgeError, _native.InputError, _native.CorruptError, OSError) as e:
        print(f"layerforge {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"layerforge {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"layerforge {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()
