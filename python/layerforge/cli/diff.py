"""``layerforge diff A B``: what changed between two images, each a layout (``DIR[:REF]``)
or an oci-archive file: config fields, layers added/removed/shared, and files added,
removed and changed (type, size, mode, owner, digest, link target), as text or ``--json``."""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from layerforge.diff.archive_source import extract_archive, is_archive
from layerforge.diff.compare import config_changes, file_changes, layer_changes
from layerforge.diff.file_tree import image_tree
from layerforge.diff.registry_source import is_registry_reference, pull_for_diff
from layerforge.layout.image_reader import StoredImage, read_image
from layerforge.layout.scratch import scratch_dir
from layerforge.model.reference import LayoutRef, parse_layout_ref
from layerforge.trust.text import shown


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff",
        help="show what changed between two images (config, layers, files)",
        description="Compare image A with image B, each LAYOUT_DIR[:REF], an oci-archive FILE.tar[:REF] or a "
        "registry reference docker://REGISTRY/REPO[:TAG|@DIGEST] (pulled into a scratch layout): "
        "config fields changed, layers removed, added and shared, and files removed, added and changed "
        "(type, size, mode, owner, content digest, link target) per path.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--platform", metavar="OS/ARCH", help="the image of a multi-platform index to compare")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-files", action="store_true", help="compare config and layers only (reads no layer)")
    p.add_argument("--insecure", action="store_true", help="plain HTTP to registries (loopback ones always use it)")
    p.set_defaults(run=run)


def _open(arg: str, stack: ExitStack, platform: str | None, insecure: bool) -> StoredImage:
    if is_registry_reference(arg):
        tmp = stack.enter_context(scratch_dir(Path(tempfile.gettempdir()), "diff"))
        return read_image(pull_for_diff(arg, tmp / "layout", platform=platform, insecure=insecure), platform)
    path, sep, ref = arg.partition(":") if not Path(arg).exists() else (arg, "", "")
    if Path(path).is_file() and is_archive(Path(path)):
        tmp = stack.enter_context(scratch_dir(Path(tempfile.gettempdir()), "diff"))
        layout = extract_archive(Path(path), tmp / "layout")
        return read_image(LayoutRef(layout, ref if sep else None), platform)
    return read_image(parse_layout_ref(arg), platform)


def compare(a: StoredImage, b: StoredImage, *, files: bool) -> dict[str, Any]:
    ca = a.layout.read_json(a.manifest.config, "config")
    cb = b.layout.read_json(b.manifest.config, "config")
    out: dict[str, Any] = {
        "a": {"digest": a.descriptor.digest, "config": a.manifest.config.digest},
        "b": {"digest": b.descriptor.digest, "config": b.manifest.config.digest},
        "identical": a.descriptor.digest == b.descriptor.digest,
        "config": config_changes(ca if isinstance(ca, dict) else {}, cb if isinstance(cb, dict) else {}),
        "layers": layer_changes(a, b),
        "files": None,
    }
    if files:
        with scratch_dir(Path(tempfile.gettempdir()), "diff-tree") as tmp:
            out["files"] = file_changes(image_tree(a, tmp), image_tree(b, tmp))
    return out


def _value(v: Any) -> str:
    return shown(json.dumps(v, sort_keys=True), 200)


def lines(d: dict[str, Any]) -> list[str]:
    out = [f"A {d['a']['digest']}", f"B {d['b']['digest']}" + (" (identical)" if d["identical"] else "")]
    out.append(f"config: {len(d['config'])} fields changed")
    out += [f"  ~ {shown(c['field'], 200)}: {_value(c['a'])} -> {_value(c['b'])}" for c in d["config"]]
    layers = d["layers"]
    out.append(
        f"layers: {len(layers['shared'])} shared, {len(layers['removed'])} removed, {len(layers['added'])} added"
    )
    out += [f"  - {x['digest']} ({x['size']} bytes)" for x in layers["removed"]]
    out += [f"  + {x['digest']} ({x['size']} bytes)" for x in layers["added"]]
    files = d["files"]
    if files is not None:
        out.append(
            f"files: {len(files['added'])} added, {len(files['removed'])} removed, {len(files['changed'])} changed"
        )
        out += [f"  + {shown(f['path'], 400)} ({f['type']}, {f['size']} bytes, {f['mode']})" for f in files["added"]]
        out += [f"  - {shown(f['path'], 400)}" for f in files["removed"]]
        for c in files["changed"]:
            what = ", ".join(f"{k} {_value(c['a'][k])} -> {_value(c['b'][k])}" for k in c["fields"])
            out.append(f"  ~ {shown(c['path'], 400)}: {what}")
    return out


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        a = _open(args.a, stack, args.platform, args.insecure)
        b = _open(args.b, stack, args.platform, args.insecure)
        result = compare(a, b, files=not args.no_files)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(lines(result)))
    return 0
