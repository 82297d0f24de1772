"""``layerforge nix-image``: a Nix closure as a layered, reproducible OCI image."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from layerforge.cache_dir import default_cache_dir
from layerforge.cli.nix_options import (
    add_cache_options,
    add_nix_options,
    add_provenance_target_option,
    request_from_args,
)
from layerforge.cli.progress import ProgressBar
from layerforge.errors import UsageError
from layerforge.images.nix.assemble import NixImageResult
from layerforge.images.nix.build import build_nix_image
from layerforge.images.nix.closure import Nix
from layerforge.images.nix.docker_archive import write_nix_docker_archive
from layerforge.images.nix.layer_cache import LayerCache
from layerforge.images.nix.plan import NixPlan, make_plan
from layerforge.images.nix.provenance import BuildInputs
from layerforge.images.nix.snapshotter import publish_to_store
from layerforge.layout.image_name import check_image_name, name_entry
from layerforge.layout.oci_archive import write_oci_archive
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.layout.runtime_bundle import BindMount, parse_mount, write_runtime_bundle
from layerforge.layout.scratch import scratch_dir
from layerforge.model.epoch import source_date_epoch
from layerforge.model.repo_tags import is_repo_tag

FORMATS = ("oci", "oci-archive", "docker-archive", "runtime-bundle")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "nix-image",
        help="build a layered image from a Nix closure",
        description="Build a layered OCI image from a Nix closure: the outputs of a Nix file (built with "
        "nix-build) or store paths already in the store. Layers depend only on the closure and the options.",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, type=Path, metavar="PATH", help="layout dir, archive file or bundle dir")
    out.add_argument(
        "--format",
        choices=FORMATS,
        default="oci",
        help="oci layout (default), oci-archive (one tar of the layout), docker-archive, runtime-bundle",
    )
    out.add_argument(
        "--image-name",
        metavar="NAME:TAG",
        help="io.containerd.image.name of the image's index entry (what `ctr images import` names it)",
    )
    out.add_argument("--readonly", action="store_true", help="runtime bundle: read-only root filesystem")
    out.add_argument(
        "--mount", action="append", default=[], metavar="SRC:DEST[:OPT,...]", help="runtime bundle: bind mount"
    )
    add_nix_options(p)
    add_provenance_target_option(p)
    add_cache_options(p)
    p.set_defaults(run=run)


def _check_out(out: Path, fmt: str) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if fmt != "oci" and not parent.is_dir():
        raise UsageError("--out", f"directory '{parent}' does not exist")
    if fmt in ("docker-archive", "oci-archive") and out.is_dir():
        raise UsageError("--out", f"'{out}' is a directory; {fmt} writes a file")
    if fmt == "runtime-bundle" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError("--out", f"'{out}' exists and is not an empty directory")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="layerforge: %(message)s", stream=sys.stderr)  # cache warnings
    req = request_from_args(args)
    mounts: list[BindMount] = [parse_mount(m) for m in args.mount]
    if args.format != "runtime-bundle" and (mounts or args.readonly):
        raise UsageError("--mount" if mounts else "--readonly", "only applies to --format runtime-bundle")
    if req.sbom and args.format == "docker-archive":
        raise UsageError("--sbom", "a docker-archive cannot carry an SBOM; use --format oci or runtime-bundle")
    if args.provenance_target is not None and not req.sbom:
        raise UsageError("--provenance-target", "is recorded in the provenance, which --sbom attaches: give --sbom")
    _check_out(args.out, args.format)
    check_image_name(args.image_name)
    if args.format == "docker-archive":
        # A docker-archive stores layers uncompressed: compressing them only to decompress
        # them again into the archive would be wasted work.
        req = dataclasses.replace(req, compression="none", level=None)
    epoch = source_date_epoch()
    nix = Nix()
    plan, base = make_plan(req, nix, epoch)
    build = BuildInputs.of_request(req, args.provenance_target, args.image_name) if req.sbom else None
    cache = LayerCache(None if args.no_cache else (args.cache_dir or default_cache_dir()))
    bar = ProgressBar("nix-image")
    try:
        if args.format == "docker-archive":
            tags = [plan.ref] if is_repo_tag(plan.ref) else []
            archived = write_nix_docker_archive(
                plan, base, args.out, tags=tags, cache=cache, threads=args.threads, progress=bar
            )
            bar.close()
            print(f"{args.out}:{plan.ref} {archived.manifest_digest}")
            _report_layers(plan, archived.layers, archived.cache_hits, archived.cache_misses)
            return 0
        if args.format == "oci":
            with open_for_write(args.out) as layout:
                result = build_nix_image(
                    layout, plan, base, cache=cache, threads=args.threads, progress=bar, build=build
                )
                if args.image_name is not None:
                    name_entry(layout, plan.ref, args.image_name)
        elif args.format == "oci-archive":
            parent = args.out.parent if str(args.out.parent) else Path(".")
            with scratch_dir(parent, "build") as tmp:
                with open_for_write(tmp / "layout") as layout:
                    result = build_nix_image(
                        layout, plan, base, cache=cache, threads=args.threads, progress=bar, build=build
                    )
                    if args.image_name is not None:
                        name_entry(layout, plan.ref, args.image_name)
                write_oci_archive(layout, args.out, epoch=epoch)
        else:
            parent = args.out.parent if str(args.out.parent) else Path(".")
            with scratch_dir(parent, "build") as tmp:
                with open_for_write(tmp / "layout") as layout:
                    result = build_nix_image(
                        layout, plan, base, cache=cache, threads=args.threads, progress=bar, build=build
                    )
                write_runtime_bundle(
                    OciLayout.open(tmp / "layout"),
                    plan.ref,
                    args.out,
                    readonly=args.readonly,
                    mounts=mounts,
                    artifacts=result.attestations,
                    epoch=epoch,
                )
    finally:
        bar.close()
    _report(args, result, nix)
    return 0


def _report_layers(plan: NixPlan, layers: int, hits: int, misses: int) -> None:
    """The summary line: every layer of the image's own is reused from the layer cache or
    built (``misses`` counts only what the cache missed: with no cache, every layer is built)."""
    base_layers = plan.base.layers if plan.base else 0
    built = layers - base_layers - hits
    print(
        f"{len(plan.closure.infos)} store paths in {layers - base_layers} layers"
        + (f" above {base_layers} base layers" if base_layers else "")
        + f"; layer cache: {hits} reused, {built} built",
        file=sys.stderr,
    )


def _report(args: argparse.Namespace, result: NixImageResult, nix: Nix) -> None:
    image, plan = result.image, result.plan
    print(f"{args.out}:{image.ref} {image.manifest.digest}")
    _report_layers(plan, len(image.layers), result.cache_hits, result.cache_misses)
    if result.sbom:
        print(f"sbom {result.sbom}", file=sys.stderr)
    if result.cyclonedx:
        print(f"cyclonedx {result.cyclonedx}", file=sys.stderr)
    if result.provenance:
        print(f"provenance {result.provenance}", file=sys.stderr)
    if plan.nix_snapshotter and args.format == "oci":
        ref = publish_to_store(OciLayout.open(args.out), image.ref, nix, plan.epoch)
        print(f"nix-snapshotter reference: {ref}")
