"""Entry point: ``layerforge <command> ...``.

Errors are one line on stderr naming the bad argument or input; exit status 2 for usage
errors, 1 for failed builds, 130 when interrupted. SIGTERM is handled like Ctrl-C: the native
core stops, scratch files are removed and the layout keeps its previous contents.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from layerforge import __version__, _native
from layerforge.errors import LayerforgeError, UsageError
from layerforge.trust.text import shown

#: Subcommand -> (module, one-line help). Only the invoked command's module is imported,
#: which keeps start-up short (it matters for quick operations such as a re-push).
COMMANDS = {
    "dir-image": ("layerforge.cli.dir_image", "build a single-layer image from a directory"),
    "nix-image": ("layerforge.cli.nix_image", "build a layered image from a Nix closure"),
    "unikraft-image": ("layerforge.cli.unikraft_image", "package a unikernel (kernel + initrd) the way kraft pkg does"),
    "unikraft-extract": ("layerforge.cli.unikraft_extract", "write a unikernel package's kernel, initrd and kconfig"),
    "unikraft-run": ("layerforge.cli.unikraft_run", "boot a unikernel package in QEMU the way kraft run does"),
    "nydus-image": ("layerforge.cli.nydus_image", "convert an OCI image into a Nydus (RAFS v6) image"),
    "index": ("layerforge.cli.index", "write an image index of images from other layouts, one per platform"),
    "inspect": ("layerforge.cli.inspect", "show the manifest, config and layers of an image in a layout"),
    "diff": ("layerforge.cli.diff", "show what changed between two images (config, layers, files)"),
    "export-docker": ("layerforge.cli.export_docker", "write an image as a `docker load` archive"),
    "export-oci": ("layerforge.cli.export_oci", "write a layout as one oci-archive tar"),
    "record": ("layerforge.cli.record", "write the build record (JSON) of an image in a layout"),
    "push": ("layerforge.cli.push", "push an image from a layout to a registry"),
    "pull": ("layerforge.cli.pull", "pull an image from a registry into a layout"),
    "sign": ("layerforge.cli.sign", "sign an image in cosign's format (a layout's or a registry's)"),
    "attest": ("layerforge.cli.attest", "attest an image with its provenance and SBOMs (DSSE, cosign's format)"),
    "verify": ("layerforge.cli.verify", "verify an image's cosign signatures and attestations with a public key"),
    "load": ("layerforge.cli.runtime_commands", "load an image into docker or podman, tagged NAME:TAG"),
    "run": ("layerforge.cli.runtime_commands", "load an image and run it with docker or podman"),
    "nix-plan": ("layerforge.cli.nix_stages", "(step 1 of nix-image) plan a closure's layers into JSON"),
    "nix-plans": ("layerforge.cli.nix_stages", "(step 1 of nix-image) plan several images, nix-plan argvs from JSON"),
    "nix-layer": ("layerforge.cli.nix_stages", "(step 2 of nix-image) build one layer into a layer directory"),
    "nix-assemble": ("layerforge.cli.nix_stages", "(step 3 of nix-image) write the image from plan and layers"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are a single line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {shown(message, limit=4096)}\n")


def build_parser(only: str | None = None) -> Parser:
    """The full parser, or one in which only ``only``'s subcommand is loaded."""
    parser = Parser(prog="layerforge", description="Build reproducible OCI images fast.")
    parser.add_argument("--version", action="version", version=f"layerforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    modules: dict[str, list[str]] = {}
    for name, (module, _) in COMMANDS.items():
        modules.setdefault(module, []).append(name)
    for module, names in modules.items():
        if only is None or only in names:
            importlib.import_module(module).register(sub)
        else:
            for name in names:
                sub.add_parser(name, help=COMMANDS[name][1])
    return parser


def _command(argv: Sequence[str]) -> str | None:
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


class Terminated(KeyboardInterrupt):
    """Raised from the SIGTERM handler so that builds unwind like on Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _one_line(e: BaseException) -> str:
    """The error as one line; text from input (refs, registry answers) cannot reach the
    terminal as control characters."""
    return shown(" ".join(str(e).split("\n")).strip(), limit=4096) or type(e).__name__


def _run(args: argparse.Namespace) -> int:
    """The command; image commands through their output format (a layout or an archive)."""
    if hasattr(args, "output_format"):
        from layerforge.cli.output_format import run_with_output  # noqa: PLC0415 - image commands only

        return run_with_output(args)
    result: int = args.run(args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    args.argv = argv  # as given (push receipts are keyed by the command line)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    except UsageError as e:
        print(f"layerforge {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except _native.RuleError as e:  # before InputError: a setting only the build can check (a path not in the image)
        from layerforge.option_flags import native_flag  # noqa: PLC0415 - deferred: most commands never need it

        print(f"layerforge {args.command}: error: {native_flag(e.setting)}: {_one_line(e)}", file=sys.stderr)
        return 1
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
