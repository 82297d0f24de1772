"""The steps of ``nix-image`` as separate commands, for build systems that cache each step
(Pants runs one process per batch of layers, so changing one store path re-runs only its
batch: its layer alone, or with the small layers next to it):

* ``nix-plan``: resolve the closure and decide the layers -> plan JSON (nothing written else);
  ``nix-plans``: the ``nix-plan`` of several images in one process (Pants plans the images
  that share a Nix evaluation so);
* ``nix-layer``: build layers, each into a layer directory (blob + layer.json);
* ``nix-assemble``: plan + layer directories (+ base image) -> OCI layout.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from layerforge.cli.args import add_threads_option
from layerforge.cli.nix_options import add_nix_options, add_provenance_options, provenance_from_args, request_from_args
from layerforge.cli.output_format import OCI, add_output_options
from layerforge.cli.record import listed_layer, write_record
from layerforge.errors import UsageError
from layerforge.images.nix.assemble import assemble
from layerforge.images.nix.closure import Nix, SharedNix
from layerforge.images.nix.layer_job_document import LayerJobDocument
from layerforge.images.nix.layer_jobs import BATCHINGS, SHARED, STORE_PATHS, LayerJob, build_jobs
from layerforge.images.nix.plan import NixPlan, make_plan
from layerforge.images.nix.provenance import BuildInputs
from layerforge.images.nix.shared_cuts import shared_cuts
from layerforge.layers.build import BuiltLayer
from layerforge.layers.layer_dir import (
    CONTENTS_JSON,
    LAYER_JSON,
    layer_dir_store,
    read_layer_dir,
    write_layer_contents,
    write_layer_dir,
)
from layerforge.layout.atomic import atomic_write
from layerforge.layout.image_reader import import_blobs, read_image
from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.layout.scratch import scratch_dir
from layerforge.model.epoch import source_date_epoch
from layerforge.model.reference import parse_layout_ref
from layerforge.model.repo_tags import IMAGE_NAME, is_repo_tag
from layerforge.record.build import build_record, layer_contents
from layerforge.trust.text import shown


def register(sub: Any) -> None:
    plan: argparse.ArgumentParser = sub.add_parser(
        "nix-plan", help="(step 1 of nix-image) resolve a closure and plan its layers into a JSON file"
    )
    plan.add_argument("--out", required=True, type=Path, metavar="PLAN.json")
    plan.add_argument(
        "--layer-batches",
        choices=BATCHINGS,
        default=SHARED,
        help="how the plan's layer jobs are batched into processes: so that images sharing layers share "
        "them (shared, the default), or into the fewest processes, for an image that shares no layer (per-image)",
    )
    add_nix_options(plan)
    plan.set_defaults(run=run_plan)

    plans: argparse.ArgumentParser = sub.add_parser(
        "nix-plans",
        help="(step 1 of nix-image, for several images) run the nix-plan argvs of a JSON file in one process",
    )
    plans.add_argument(
        "argvs",
        type=Path,
        metavar="ARGVS.json",
        help='{"plans": [ARGV, ...]}: each a nix-plan argv without the command word, each with its own --out',
    )
    plans.set_defaults(run=run_plans)

    layer: argparse.ArgumentParser = sub.add_parser(
        "nix-layer", help="(step 2 of nix-image) build the layers of a layer job, each into a layer directory"
    )
    layer.add_argument(
        "--job",
        required=True,
        metavar="JSON",
        help="the layer job document (a plan's job argv holds it; see layerforge.images.nix.layer_job_document)",
    )
    add_threads_option(layer)
    layer.set_defaults(run=run_layer)

    asm: argparse.ArgumentParser = sub.add_parser(
        "nix-assemble", help="(step 3 of nix-image) write the image from a plan and its layer directories"
    )
    asm.add_argument("--plan", required=True, type=Path, metavar="PLAN.json")
    asm.add_argument("--layer-dir", action="append", default=[], type=Path, metavar="DIR", help="in plan order")
    asm.add_argument("--out", required=True, type=Path, metavar="LAYOUT_DIR")
    asm.add_argument(
        "--without-layer-blobs",
        action="store_true",
        help="read only each layer directory's layer.json and leave the layer blobs out of the layout: the "
        "caller adds them (Pants merges each layer process's blob into the output, checked against its digest)",
    )
    asm.add_argument("--from-image", metavar="LAYOUT[:REF]", help="the base image the plan was made on")
    asm.add_argument(
        "--image-name",
        metavar="NAME:TAG",
        help="io.containerd.image.name of the index entry (what export-docker, load and run tag the image as)",
    )
    add_provenance_options(asm)
    asm.add_argument(
        "--record",
        type=Path,
        metavar="FILE.json",
        help="also write the image's build record, as `layerforge record` writes it; every --layer-dir must hold "
        "what its layer holds (contents.json, as nix-layer writes it)",
    )
    asm.add_argument("--record-repository", metavar="REPO", help="`record --repository` of --record")
    asm.add_argument("--record-tag", action="append", default=[], metavar="TAG", help="`record --tag` of --record")
    asm.add_argument("--record-output", metavar="PATH", help="`record --output` of --record (default: --out)")
    asm.add_argument("--record-archive", metavar="FILE.tar", help="`record --archive` of --record")
    add_output_options(asm, image_name=False)
    asm.set_defaults(run=run_assemble)


def run_plan(args: argparse.Namespace) -> int:
    write_plan(args, plan_of(args, Nix()))
    return 0


def plan_of(args: argparse.Namespace, nix: Nix) -> NixPlan:
    """The plan ``nix-plan`` of ``args`` makes (not written)."""
    plan, _ = make_plan(request_from_args(args), nix, source_date_epoch())
    return replace(plan, batching=args.layer_batches)


def write_plan(args: argparse.Namespace, plan: NixPlan) -> None:
    atomic_write(args.out, plan.dumps())
    print(f"{args.out}: {len(plan.closure.infos)} store paths, {len(plan.layers)} store-path layers")


def run_plans(args: argparse.Namespace) -> int:
    """``nix-plan`` of each argv of the file, in turn, in this process: the plan files are
    the ones each ``nix-plan`` writes, but for the cuts the images' batches of small layers
    need so that each batch is one process for all of them (``cutsAfter``). The first that
    fails stops it, and nothing is written (a build system then plans each image alone, so
    that the error names its image)."""
    from layerforge.cli.main import build_parser  # noqa: PLC0415 - the nix-plan parser itself

    name = str(args.argvs)
    try:
        doc = json.loads(args.argvs.read_bytes())
    except (OSError, ValueError) as e:
        raise UsageError("ARGVS.json", f"{shown(name)} is not readable JSON ({e})") from None
    argvs = doc.get("plans") if isinstance(doc, dict) else None
    if not isinstance(argvs, list) or not all(
        isinstance(argv, list) and all(isinstance(a, str) for a in argv) for argv in argvs
    ):
        raise UsageError("ARGVS.json", f'{shown(name)} is not {{"plans": [ARGV, ...]}} of lists of strings')
    parser = build_parser("nix-plan")
    parsed = [parser.parse_args(["nix-plan", *argv]) for argv in argvs]
    outs = set()
    for plan_args in parsed:
        if plan_args.out.resolve() in outs:
            raise UsageError("ARGVS.json", f"two argvs of {shown(name)} write {shown(str(plan_args.out))}")
        outs.add(plan_args.out.resolve())
    # One closure query for every image of derivations (what Pants gives): each image's then
    # comes from it (see SharedNix).
    nix = SharedNix()
    roots = []
    for req in map(request_from_args, parsed):
        if req.derivations and req.nix_file is None and req.flake is None and not req.store_paths:
            roots += nix.realise(req.derivations)
            roots += nix.realise(req.copy_to_root_derivations, "--copy-to-root-derivation")
    nix.prefetch(roots)
    plans = [plan_of(plan_args, nix) for plan_args in parsed]
    # The images' batches of small layers are cut where the others need them cut, so that
    # each batch is one process for every image holding it (see shared_cuts.py).
    shared = [i for i, plan in enumerate(plans) if plan.batching == SHARED]
    sizes = {p: info.nar_size for plan in plans for p, info in plan.closure.infos.items()}
    cuts = shared_cuts([plans[i].layer_jobs() for i in shared], sizes.__getitem__)
    for i, cut in zip(shared, cuts):
        plans[i] = replace(plans[i], cuts=cut)
    for plan_args, plan in zip(parsed, plans):
        write_plan(plan_args, plan)
    return 0


def run_layer(args: argparse.Namespace) -> int:
    """Each layer of the ``--job`` document, in order, into its directory. The plan may come
    from a cache on a machine that never built its store paths: those the layers read are
    realised through the substituters first. On failure no layer directory this made is left."""
    document = LayerJobDocument.loads(args.job, "--job")
    jobs = [(Path(layer.out), layer.job) for layer in document.layers]
    document.check_dirs()
    nix = Nix()
    nix.ensure_present(_read_paths(j for _, j in jobs if j.kind == STORE_PATHS), "--store-path")
    # the snapshotter's store paths are only mountpoints
    nix.ensure_present(_copied_paths(j for _, j in jobs), "--copy-to-root")
    created = {out for out, _ in jobs if not out.exists()}
    built: list[BuiltLayer] = []
    try:
        for out, job in jobs:
            store = layer_dir_store(out)
            built += build_jobs(store, [job], threads=args.threads)
            write_layer_dir(out, built[-1])
            store.tmp_dir.mkdir(parents=True, exist_ok=True)
            with scratch_dir(store.tmp_dir, "contents") as tmp:
                what = f"'{out}': layer {built[-1].descriptor.digest}"
                contents = layer_contents(store, built[-1].descriptor, built[-1].diff_id, what, tmp / "layer.tar")
            write_layer_contents(out, contents)
            store.remove_tmp_dir_if_empty()
    except BaseException:
        for (out, _), layer in itertools.zip_longest(jobs, built):
            if out in created:
                _remove_layer_dir(out, layer)
        raise
    for layer, built_layer in zip(document.layers, built):
        print(f"{layer.out}: {built_layer.descriptor.digest} {built_layer.descriptor.size} bytes")
    return 0


def _read_paths(jobs: Iterable[LayerJob]) -> list[str]:
    return [p for job in jobs for p in job.store_paths]


def _copied_paths(jobs: Iterable[LayerJob]) -> list[str]:
    return [p for job in jobs if job.kind != STORE_PATHS for p in job.copy_to_root]


def _remove_layer_dir(out: Path, built: BuiltLayer | None) -> None:
    """Remove the layer directory ``out`` this command created: its layer.json and blob (if
    built) and the empty directories its blob store made, nothing else."""
    store = layer_dir_store(out)
    if built is not None:
        for name in (LAYER_JSON, CONTENTS_JSON):
            with contextlib.suppress(OSError):
                (out / name).unlink()
        with contextlib.suppress(OSError):
            store.blob_path(built.descriptor.digest).unlink()
    for d in (store.tmp_dir, store.blob_dir, store.blob_dir.parent, out):
        with contextlib.suppress(OSError):
            d.rmdir()


def run_assemble(args: argparse.Namespace) -> int:
    if args.image_name is not None and not is_repo_tag(args.image_name):
        raise UsageError("--image-name", f"{shown(repr(args.image_name))} is not a docker image name NAME:TAG")
    if args.record is not None and args.output_format != OCI:
        raise UsageError("--record", "needs --format oci (record the layout, then export it)")
    # what each layer holds, for the record, read before anything is written
    listed = dict(listed_layer(d) for d in args.layer_dir) if args.record is not None else {}
    plan = NixPlan.loads(args.plan.read_bytes(), str(args.plan))
    build = provenance_from_args(args, args.image_name)
    if build != BuildInputs(image_name=args.image_name) and not plan.sbom:
        flag = "--provenance-target" if build.target is not None else "--provenance-nix-file/--provenance-flake"
        raise UsageError(flag, "the plan has no --sbom: no provenance is attached to record it in")
    base = read_image(parse_layout_ref(args.from_image), platform=f"linux/{plan.arch}") if args.from_image else None
    with_blobs = not args.without_layer_blobs
    layers = [read_layer_dir(d, blob=with_blobs) for d in args.layer_dir]
    with open_for_write(args.out) as layout:
        if with_blobs:
            for d, layer in zip(args.layer_dir, layers):
                import_blobs(layer_dir_store(d), layout, [layer.descriptor])
        result = assemble(layout, plan, layers, base, layer_blobs_added_later=not with_blobs, build=build)
        if args.image_name is not None:
            layout.tag(result.image.manifest.with_annotations({IMAGE_NAME: args.image_name}), result.image.ref)
    print(f"{args.out}:{result.image.ref} {result.image.manifest.digest}")
    if args.record is not None:
        record = build_record(
            OciLayout.open(args.out),
            result.image.ref,
            repository=args.record_repository,
            tags=args.record_tag,
            output=args.record_output,
            listed=listed,
        )
        if args.record_archive is not None:
            record["archive"] = args.record_archive
        write_record(args.record, record)
    return 0
