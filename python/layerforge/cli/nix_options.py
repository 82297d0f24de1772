"""Options shared by ``nix-image`` and ``nix-plan`` (the same inputs, the same plan)."""

from __future__ import annotations

import argparse
from pathlib import Path

from layerforge.cache_dir import default_cache_dir
from layerforge.cli.args import add_runtime_options, add_threads_option, runtime_config
from layerforge.errors import UsageError
from layerforge.images.nix.accounts import DEFAULT_UID
from layerforge.images.nix.copy_to_root import MODES
from layerforge.images.nix.layering import STRATEGIES
from layerforge.images.nix.perms import parse_perms
from layerforge.images.nix.provenance import BuildInputs, NixSource
from layerforge.images.nix.request import DEFAULT_LAYERING, DEFAULT_MAX_LAYERS, LAYER_LIMIT, NixImageRequest
from layerforge.layers.build import COMPRESSIONS, DEFAULT_COMPRESSION
from layerforge.model.platform import LINUX_ARCHES
from layerforge.model.reference import DEFAULT_TAG, parse_layout_ref


def add_nix_options(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("input")
    src.add_argument("--nix-file", type=Path, metavar="FILE", help="Nix expression to build with nix-build")
    src.add_argument(
        "--flake",
        metavar="REF",
        help="flake output to build (.#app, path:sub#app; local flakes are read as path: directories, "
        "the lock file is used and never updated)",
    )
    src.add_argument(
        "--derivation",
        action="append",
        default=[],
        metavar="DRV[!OUT]",
        help="derivation output to realise (/nix/store/...drv, output 'out' unless named; repeatable)",
    )
    src.add_argument("--attr", "-A", metavar="ATTR", help="attribute of --nix-file to build")
    src.add_argument(
        "--argstr",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="string argument for nix-build",
    )
    src.add_argument("--store-path", action="append", default=[], metavar="PATH", help="store path (repeatable)")
    src.add_argument(
        "--system",
        metavar="SYSTEM",
        help="Nix system to evaluate for (aarch64-linux, ...: --argstr system and --system for --nix-file, "
        "packages.SYSTEM.NAME for --flake .#NAME); sets the image's architecture unless --arch does",
    )

    img = p.add_argument_group("image")
    img.add_argument("--tag", default=DEFAULT_TAG, metavar="REF", help=f"reference name (default {DEFAULT_TAG})")
    img.add_argument("--arch", choices=tuple(LINUX_ARCHES), help="image architecture (default: this machine's)")
    img.add_argument(
        "--allow-foreign-executables",
        action="store_true",
        help="let executables built for another machine than --arch into the image (refused by default)",
    )
    img.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"layer compression (default {DEFAULT_COMPRESSION})",
    )
    img.add_argument("--level", type=int, metavar="N", help="compression level")
    img.add_argument(
        "--sbom",
        action="store_true",
        help="attach SPDX 2.3 and CycloneDX 1.5 SBOMs of the closure and its SLSA provenance (in-toto)",
    )
    img.add_argument(
        "--nix-snapshotter",
        action="store_true",
        help="one small layer of store-path mountpoints for containerd's nix-snapshotter",
    )
    img.add_argument("--source", metavar="URL", help="org.opencontainers.image.source annotation")
    img.add_argument("--revision", metavar="REV", help="org.opencontainers.image.revision annotation")

    lay = p.add_argument_group("layers")
    lay.add_argument(
        "--layering",
        choices=STRATEGIES,
        default=DEFAULT_LAYERING,
        help=f"layering strategy (default {DEFAULT_LAYERING})",
    )
    lay.add_argument(
        "--max-layers",
        type=int,
        default=DEFAULT_MAX_LAYERS,
        metavar="N",
        help=f"layer budget including base layers (default {DEFAULT_MAX_LAYERS}, at most {LAYER_LIMIT})",
    )
    lay.add_argument(
        "--layer-group",
        nargs="+",
        action="append",
        default=[],
        metavar="PATH",
        help="store paths sharing one layer (repeatable; also --layer-group=PATH,PATH...)",
    )
    lay.add_argument("--copy-to-root", action="append", default=[], metavar="PATH", help="store path merged into /")
    lay.add_argument(
        "--copy-to-root-attr",
        action="append",
        default=[],
        metavar="ATTR",
        help="attribute of --nix-file (or, with --flake, flake output reference) merged into /",
    )
    lay.add_argument(
        "--copy-to-root-derivation",
        action="append",
        default=[],
        metavar="DRV[!OUT]",
        help="derivation output realised and merged into /",
    )
    lay.add_argument("--copy-to-root-mode", choices=MODES, default="symlink", help="symlink (default) or copy")
    lay.add_argument(
        "--perms",
        action="append",
        default=[],
        metavar="REGEX=MODE[:UID:GID]",
        help="mode/owner of matching paths (owner and group by id, or the --user's names)",
    )
    lay.add_argument("--from-image", metavar="LAYOUT[:REF]", help="base image whose layers and config come first")
    add_runtime_options(p)
    acct = p.add_argument_group("user account (with --user NAME[:GROUP])")
    acct.add_argument(
        "--uid",
        type=int,
        metavar="N",
        help=f"uid of the --user account (default {DEFAULT_UID}; checked if the image has one)",
    )
    acct.add_argument("--gid", type=int, metavar="N", help="gid of its group (default: the uid)")


def add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cache")
    g.add_argument("--cache-dir", type=Path, help=f"layer cache (default {default_cache_dir()})")
    g.add_argument("--no-cache", action="store_true", help="do not reuse or record store-path layers")
    add_threads_option(g)


def layer_groups(values: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    """The groups of ``--layer-group`` options: the paths after each, or the comma-separated
    paths of ``--layer-group=P,P`` (one argument, which argparse never reads as an option: the
    form build systems pass; store paths hold no comma). Each path is checked later."""
    return tuple(tuple(p for v in group for p in v.split(",")) for group in values)


def request_from_args(args: argparse.Namespace) -> NixImageRequest:
    return NixImageRequest(
        nix_file=args.nix_file,
        attr=args.attr,
        argstrs=tuple((n, v) for n, v in args.argstr),
        flake=args.flake,
        system=args.system,
        derivations=tuple(args.derivation),
        store_paths=tuple(args.store_path),
        ref=args.tag,
        arch=args.arch,
        allow_foreign_executables=args.allow_foreign_executables,
        layering=args.layering,
        max_layers=args.max_layers,
        layer_groups=layer_groups(args.layer_group),
        copy_to_root=tuple(args.copy_to_root),
        copy_to_root_attrs=tuple(args.copy_to_root_attr),
        copy_to_root_derivations=tuple(args.copy_to_root_derivation),
        copy_to_root_mode=args.copy_to_root_mode,
        perms=parse_perms(args.perms),
        runtime=runtime_config(args),
        uid=args.uid,
        gid=args.gid,
        from_image=parse_layout_ref(args.from_image) if args.from_image else None,
        compression=args.compression,
        level=args.level,
        threads=getattr(args, "threads", 0),
        nix_snapshotter=args.nix_snapshotter,
        sbom=args.sbom,
        source=args.source,
        revision=args.revision,
    )


PROVENANCE_TARGET_HELP = (
    "the build system's name of what is built (a Pants target address), recorded in the SLSA provenance "
    "that --sbom attaches"
)


def add_provenance_target_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provenance-target", metavar="ADDRESS", help=PROVENANCE_TARGET_HELP)


def add_provenance_options(p: argparse.ArgumentParser) -> None:
    """``nix-assemble``'s record of what the plan was made from (its plan was made from
    derivations or store paths: the Nix file or flake they were evaluated from is named here,
    read only to record it and its sha256 in the provenance)."""
    g = p.add_argument_group("provenance (recorded when the plan asks for an SBOM)")
    g.add_argument("--provenance-target", metavar="ADDRESS", help=PROVENANCE_TARGET_HELP)
    g.add_argument("--provenance-nix-file", type=Path, metavar="FILE", help="the Nix file the plan was evaluated from")
    g.add_argument("--provenance-flake", metavar="REF", help="the flake output the plan was evaluated from")
    g.add_argument("--provenance-attr", metavar="ATTR", help="the attribute of --provenance-nix-file")
    g.add_argument(
        "--provenance-argstr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an --argstr of --provenance-nix-file (repeatable)",
    )
    g.add_argument("--provenance-system", metavar="SYSTEM", help="the Nix system it was evaluated for")
    g.add_argument(
        "--provenance-copy-to-root-attr",
        action="append",
        default=[],
        metavar="REF",
        help="a flake output merged into / (with --provenance-flake)",
    )


def _name_value(arg: str) -> tuple[str, str]:
    name, sep, value = arg.partition("=")
    if not sep or not name:
        raise UsageError("--provenance-argstr", f"{arg!r} is not NAME=VALUE")
    return name, value


def provenance_from_args(args: argparse.Namespace, image_name: str | None) -> BuildInputs:
    """The :class:`BuildInputs` that ``add_provenance_options`` gave."""
    if args.provenance_nix_file is None and args.provenance_flake is None:
        given = [
            flag
            for flag, value in (
                ("--provenance-attr", args.provenance_attr),
                ("--provenance-argstr", args.provenance_argstr),
                ("--provenance-system", args.provenance_system),
                ("--provenance-copy-to-root-attr", args.provenance_copy_to_root_attr),
            )
            if value
        ]
        if given:
            raise UsageError(given[0], "needs --provenance-nix-file or --provenance-flake")
    source = NixSource.of(
        nix_file=args.provenance_nix_file,
        flake=args.provenance_flake,
        attr=args.provenance_attr,
        argstrs=[_name_value(a) for a in args.provenance_argstr],
        system=args.provenance_system,
        copy_to_root_attrs=args.provenance_copy_to_root_attr,
        option="--provenance-nix-file",
    )
    return BuildInputs(target=args.provenance_target, source=source, image_name=image_name)
