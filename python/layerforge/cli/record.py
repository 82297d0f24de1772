"""``layerforge record LAYOUT_DIR[:REF] --out FILE.json``: the build record of an image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError
from layerforge.layers.layer_dir import CONTENTS_JSON, read_layer_dir
from layerforge.layout.atomic import atomic_write
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.reference import parse_layout_ref
from layerforge.record.build import build_record, check_contents


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "record",
        help="write the build record (JSON) of an image in a layout",
        description="Write what LAYOUT_DIR[:REF] holds as a build record (docs/records.md, schema "
        "build-record.v1.json): the digest, per image its platform, config and layers (digest, diff_id, "
        "size, the store paths and files each holds), an index's entries and the referrers.",
    )
    p.add_argument("target", metavar="LAYOUT_DIR[:REF]")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.json", help="record to write (atomically)")
    p.add_argument("--repository", metavar="REPO", help="the repository the image is published as")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag it is published as (repeatable)")
    p.add_argument("--output", metavar="PATH", help="how the record names the layout (default: LAYOUT_DIR)")
    p.add_argument("--archive", metavar="FILE.tar", help="the oci-archive written of the layout, to name in the record")
    p.add_argument("--no-files", action="store_true", help="leave out what each layer holds (reads no layer)")
    p.add_argument(
        "--layer-dir",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a layer directory nix-layer wrote (layer.json, contents.json): what its layer holds is taken from it, "
        "not read from the blob, which the layout may then lack (repeatable)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    target = parse_layout_ref(args.target)
    record = build_record(
        OciLayout.open(target.path),
        target.ref,
        repository=args.repository,
        tags=args.tag,
        output=args.output,
        files=not args.no_files,
        listed=dict(listed_layer(d) for d in args.layer_dir),
    )
    if args.archive is not None:
        record["archive"] = args.archive
    write_record(args.out, record)
    return 0


def write_record(out: Path, record: dict[str, Any]) -> None:
    """Write the build record ``record`` into ``out`` (atomically) and say so."""
    atomic_write(out, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    print(f"{out}: {record['digest']} ({len(record['images'])} images)")


def listed_layer(path: Path) -> tuple[str, dict[str, Any]]:
    """The digest of the layer of the layer directory ``path`` and what it holds."""
    layer = read_layer_dir(path, blob=False)
    name = path / CONTENTS_JSON
    try:
        doc = json.loads(name.read_bytes())
    except (OSError, ValueError) as e:
        raise LayerforgeError(f"'{name}' is not readable ({e})") from None
    return layer.descriptor.digest, check_contents(doc, f"'{name}'")
