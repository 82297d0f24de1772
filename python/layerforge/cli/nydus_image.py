"""``layerforge nydus-image SRC_LAYOUT[:REF] --out LAYOUT_DIR``: convert an OCI image to Nydus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from layerforge.cli.args import add_threads_option
from layerforge.cli.output_format import add_output_options, name_output
from layerforge.cli.progress import ProgressBar
from layerforge.images.nydus.convert import NydusImageResult, NydusIndexResult, convert_nydus_image
from layerforge.images.nydus.options import NydusRequest, parse_chunk_size
from layerforge.model.reference import parse_layout_ref
from layerforge.option_flags import choices, default
from layerforge.option_rules import human_size

_CHUNK_SIZE = int(default("nydus.chunk_size"))
_COMPRESSOR = str(default("nydus.compressor"))
_DIGESTER = str(default("nydus.digester"))
_PREFETCH = str(default("nydus.prefetch"))


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "nydus-image",
        help="convert an OCI image into a Nydus (RAFS v6) image",
        description="Convert the image SRC_LAYOUT[:REF] (gzip, zstd or plain tar layers) into a Nydus image in "
        "LAYOUT_DIR: one Nydus data blob per layer and a merged RAFS v6 bootstrap layer, as nydusify "
        "writes them. The same input and options give the same bytes on any machine.",
    )
    p.add_argument("image", metavar="SRC_LAYOUT[:REF]", help="OCI layout (and reference) of the source image")
    p.add_argument(
        "--out", required=True, type=Path, metavar="LAYOUT_DIR", help="OCI layout to write (created if absent)"
    )
    p.add_argument("--tag", metavar="REF", help="reference name in LAYOUT_DIR (default: the source's, else latest)")
    p.add_argument(
        "--chunk-size",
        default=hex(_CHUNK_SIZE),  # as nydus-image takes it
        metavar="SIZE",
        help="chunk size, a power of two from 4 KiB to 16 MiB (0x100000, 1MiB, ...; "
        f"default {human_size(_CHUNK_SIZE)})",
    )
    p.add_argument(
        "--compressor",
        choices=choices("nydus.compressor"),
        default=_COMPRESSOR,
        help=f"chunk compressor (default {_COMPRESSOR})",
    )
    p.add_argument(
        "--digester", choices=choices("nydus.digester"), default=_DIGESTER, help=f"chunk digester (default {_DIGESTER})"
    )
    p.add_argument(
        "--chunk-dict",
        metavar="LAYOUT_OR_BOOTSTRAP",
        help="reuse chunks of another Nydus image: its OCI layout (LAYOUT[:REF]) or its bootstrap file "
        "(blobs beside it, named by digest)",
    )
    p.add_argument(
        "--prefetch",
        nargs="+",
        action="extend",
        metavar="PATTERN",
        help=f"absolute paths for the bootstrap's prefetch table (repeatable; default: {_PREFETCH})",
    )
    p.add_argument(
        "--merge-platform",
        action="store_true",
        help="tag an index holding the original manifest and the Nydus one (nydusify --merge-platform)",
    )
    p.add_argument(
        "--platform",
        metavar="OS/ARCH",
        help="convert only this platform of a multi-platform index (default: every platform, into an index)",
    )
    add_threads_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    req = NydusRequest(
        ref=args.tag,
        chunk_size=parse_chunk_size(args.chunk_size),
        compressor=args.compressor,
        digester=args.digester,
        chunk_dict=args.chunk_dict,
        prefetch=tuple(args.prefetch) if args.prefetch else (_PREFETCH,),
        merge_platform=args.merge_platform,
        platform=args.platform,
        threads=args.threads,
    )
    bar = ProgressBar("nydus-image")
    try:
        result = convert_nydus_image(parse_layout_ref(args.image), args.out, req, progress=bar)
    finally:
        bar.close()
    name_output(args.out, result.ref, args.image_name)
    platforms = result.platforms if isinstance(result, NydusIndexResult) else (result,)
    if args.json:
        out = [summary(args.out, r) for r in platforms]
        doc = {**out[0], "platforms": out} if isinstance(result, NydusIndexResult) else out[0]
        print(json.dumps(doc, sort_keys=True))
        return 0
    print(f"{args.out}:{result.ref} {result.tagged.digest}")
    for r in platforms:
        lower = sum(s.lower_bytes for s in r.layers)
        print(
            (f"{r.manifest.platform}: " if isinstance(result, NydusIndexResult) else "")
            + f"{len(r.blobs)} blobs, {r.new_blob_bytes} new blob bytes from "
            f"{sum(s.file_bytes for s in r.layers)} file bytes; deduplicated {lower} bytes against lower layers"
            + (f"; chunk dict saved {r.dict_saved_bytes} bytes" if args.chunk_dict else "")
        )
    return 0


def summary(out: Path, r: NydusImageResult) -> dict[str, Any]:
    return {
        "layout": str(out),
        "ref": r.ref,
        "digest": r.tagged.digest,
        "manifest": r.manifest.digest,
        "bootstrap": r.bootstrap.digest,
        "blobs": [{"digest": b.digest, "size": b.size} for b in r.blobs],
        "new_blob_bytes": r.new_blob_bytes,
        "dict_saved_bytes": r.dict_saved_bytes,
        "layers": [
            {
                "source": s.source.digest,
                "blob": s.blob.digest if s.blob else None,
                "chunks": s.chunks,
                "file_bytes": s.file_bytes,
                "dup_bytes": s.dup_bytes,
                "lower_bytes": s.lower_bytes,
                "dict_bytes": s.dict_bytes,
            }
            for s in r.layers
        ],
    }
