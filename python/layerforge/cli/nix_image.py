"""``layerforge nix-image``: a Nix closure as a layered, reproducible OCI image."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from layerforge.cache_dir import default_cache_dir
from layerforge.cli.args import add_runtime_options, runtime_config
from layerforge.cli.progress import ProgressBar
from layerforge.errors import UsageError
from layerforge.images.nix.build import (
    DEFAULT_MAX_LAYERS,
    LAYER_LIMIT,
    NixImageRequest,
    NixImageResult,
    PermSpec,
    build_nix_image,
    prepare,
)
from layerforge.images.nix.closure import Nix
from layerforge.images.nix.copy_to_root import MODES
from layerforge.images.nix.layer_cache import LayerCache
from layerforge.images.nix.layering import STRATEGIES
from layerforge.images.nix.snapshotter import publish_to_store
from layerforge.layers.build import COMPRESSIONS
from layerforge.layout.docker_archive import export_docker_archive
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.layout.runtime_bundle import BindMount, parse_mount, write_runtime_bundle
from layerforge.model.epoch import source_date_epoch
from layerforge.model.platform import LINUX_ARCHES
from layerforge.model.reference import DEFAULT_TAG, parse_layout_ref

FORMATS = ("oci", "docker-archive", "runtime-bundle")
_PERM = re.compile(r"^(?P<re>.+)=(?P<mode>[0-7]{3,4})?(?::(?P<uid>\d+):(?P<gid>\d+))?$")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "nix-image",
        help="build a layered image from a Nix closure",
        description="Build a layered OCI image from a Nix closure: the outputs of a Nix file (built with "
        "nix-build) or store paths already in the store. Layers depend only on the closure and the options.",
    )
    src = p.add_argument_group("input")
    src.add_argument("--nix-file", type=Path, metavar="FILE", help="Nix expression to build with nix-build")
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

    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, type=Path, metavar="PATH", help="layout dir, archive file or bundle dir")
    out.add_argument(
        "--format", choices=FORMATS, default="oci", help="oci layout (default), docker-archive, runtime-bundle"
    )
    out.add_argument("--tag", default=DEFAULT_TAG, metavar="REF", help=f"reference name (default {DEFAULT_TAG})")
    out.add_argument("--arch", choices=tuple(LINUX_ARCHES), help="image architecture (default: this machine's)")
    out.add_argument("--compression", choices=COMPRESSIONS, default="gzip", help="layer compression (default gzip)")
    out.add_argument("--level", type=int, metavar="N", help="compression level")
    out.add_argument("--sbom", action="store_true", help="attach an SPDX 2.3 SBOM of the closure")
    out.add_argument(
        "--nix-snapshotter",
        action="store_true",
        help="one small layer of store-path mountpoints for containerd's nix-snapshotter; also adds the image "
        "archive to the Nix store and prints its nix:0 reference",
    )
    out.add_argument("--readonly", action="store_true", help="runtime bundle: read-only root filesystem")
    out.add_argument(
        "--mount", action="append", default=[], metavar="SRC:DEST[:OPT,...]", help="runtime bundle: bind mount"
    )

    lay = p.add_argument_group("layers")
    lay.add_argument(
        "--layering", choices=STRATEGIES, default="popularity", help="layering strategy (default popularity)"
    )
    lay.add_argument(
        "--max-layers",
        type=int,
        default=DEFAULT_MAX_LAYERS,
        metavar="N",
        help=f"layer budget including base layers (default {DEFAULT_MAX_LAYERS}, at most {LAYER_LIMIT})",
    )
    lay.add_argument(
        "--layer-group", nargs="+", action="append", default=[], metavar="PATH", help="store paths sharing one layer"
    )
    lay.add_argument("--copy-to-root", action="append", default=[], metavar="PATH", help="store path merged into /")
    lay.add_argument("--copy-to-root-mode", choices=MODES, default="symlink", help="symlink (default) or copy")
    lay.add_argument(
        "--perms", action="append", default=[], metavar="REGEX=MODE[:UID:GID]", help="mode/owner of matching paths"
    )
    lay.add_argument("--from-image", metavar="LAYOUT[:REF]", help="base image whose layers and config come first")
    lay.add_argument("--cache-dir", type=Path, help=f"layer cache (default {default_cache_dir()})")
    lay.add_argument("--no-cache", action="store_true", help="do not reuse or record store-path layers")
    lay.add_argument("--threads", type=int, default=0, metavar="N", help="worker threads (default: one per core)")
    lay.add_argument("--source", metavar="URL", help="org.opencontainers.image.source annotation")
    lay.add_argument("--revision", metavar="REV", help="org.opencontainers.image.revision annotation")
    add_runtime_options(p)
    p.set_defaults(run=run)


def parse_perms(values: list[str]) -> tuple[PermSpec, ...]:
    out = []
    for v in values:
        m = _PERM.match(v)
        if not m or (m.group("mode") is None and m.group("uid") is None):
            raise UsageError("--perms", f"{v!r} is not REGEX=MODE[:UID:GID] (e.g. '/nix/store/.*-app/bin/.*=0755')")
        out.append(
            PermSpec(
                pattern=m.group("re"),
                mode=int(m.group("mode"), 8) if m.group("mode") else None,
                uid=int(m.group("uid")) if m.group("uid") else None,
                gid=int(m.group("gid")) if m.group("gid") else None,
            )
        )
    return tuple(out)


def request_from_args(args: argparse.Namespace) -> NixImageRequest:
    return NixImageRequest(
        nix_file=args.nix_file,
        attr=args.attr,
        argstrs=tuple((n, v) for n, v in args.argstr),
        store_paths=tuple(args.store_path),
        ref=args.tag,
        arch=args.arch,
        layering=args.layering,
        max_layers=args.max_layers,
        layer_groups=tuple(tuple(g) for g in args.layer_group),
        copy_to_root=tuple(args.copy_to_root),
        copy_to_root_mode=args.copy_to_root_mode,
        perms=parse_perms(args.perms),
        runtime=runtime_config(args),
        from_image=parse_layout_ref(args.from_image) if args.from_image else None,
        compression=args.compression,
        level=args.level,
        threads=args.threads,
        nix_snapshotter=args.nix_snapshotter,
        sbom=args.sbom,
        source=args.source,
        revision=args.revision,
    )


def _check_out(out: Path, fmt: str) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if fmt != "oci" and not parent.is_dir():
        raise UsageError("--out", f"directory '{parent}' does not exist")
    if fmt == "docker-archive" and out.is_dir():
        raise UsageError("--out", f"'{out}' is a directory; docker-archive writes a file")
    if fmt == "runtime-bundle" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError("--out", f"'{out}' exists and is not an empty directory")


def run(args: argparse.Namespace) -> int:
    req = request_from_args(args)
    mounts: list[BindMount] = [parse_mount(m) for m in args.mount]
    if args.format != "runtime-bundle" and (mounts or args.readonly):
        raise UsageError("--mount" if mounts else "--readonly", "only applies to --format runtime-bundle")
    if req.sbom and args.format == "docker-archive":
        raise UsageError("--sbom", "a docker-archive cannot carry an SBOM; use --format oci or runtime-bundle")
    _check_out(args.out, args.format)
    epoch = source_date_epoch()
    nix = Nix()
    prepared = prepare(req, nix)
    cache = LayerCache(None if args.no_cache else (args.cache_dir or default_cache_dir()))
    bar = ProgressBar("nix-image")
    try:
        if args.format == "oci":
            with open_for_write(args.out) as layout:
                result = build_nix_image(
                    layout, req, epoch=epoch, nix=nix, cache=cache, progress=bar, prepared=prepared
                )
        else:
            result = _build_other_format(
                args, req, epoch=epoch, nix=nix, cache=cache, bar=bar, prepared=prepared, mounts=mounts
            )
    finally:
        bar.close()
    _report(args, result, nix, epoch)
    return 0


def _build_other_format(
    args: argparse.Namespace,
    req: NixImageRequest,
    *,
    epoch: int,
    nix: Nix,
    cache: LayerCache,
    bar: ProgressBar,
    prepared: Any,
    mounts: list[BindMount],
) -> NixImageResult:
    parent = args.out.parent if str(args.out.parent) else Path(".")
    with tempfile.TemporaryDirectory(dir=parent, prefix=".layerforge-build-") as tmp:
        with open_for_write(Path(tmp) / "layout") as layout:
            result = build_nix_image(layout, req, epoch=epoch, nix=nix, cache=cache, progress=bar, prepared=prepared)
        layout = OciLayout.open(Path(tmp) / "layout")
        if args.format == "docker-archive":
            export_docker_archive(layout, req.ref, args.out, epoch=epoch)
        else:
            write_runtime_bundle(
                layout, req.ref, args.out, readonly=args.readonly, mounts=mounts, sbom=result.sbom, epoch=epoch
            )
    return result


def _report(args: argparse.Namespace, result: NixImageResult, nix: Nix, epoch: int) -> None:
    image = result.image
    paths = len(result.closure.infos)
    nix_layers = len(image.layers) - result.base_layers
    print(f"{args.out}:{image.ref} {image.manifest.digest}")
    summary = (
        f"{paths} store paths in {nix_layers} layers"
        + (f" above {result.base_layers} base layers" if result.base_layers else "")
        + f"; layer cache: {result.cache_hits} reused, {result.cache_misses} built"
    )
    print(summary, file=sys.stderr)
    if result.sbom:
        print(f"sbom {result.sbom}", file=sys.stderr)
    if args.nix_snapshotter and args.format == "oci":
        ref = publish_to_store(OciLayout.open(args.out), image.ref, nix, epoch)
        print(f"nix-snapshotter reference: {ref}")
