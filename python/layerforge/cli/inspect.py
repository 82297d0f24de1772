"""``layerforge inspect LAYOUT_DIR[:REF]`` (or ``REGISTRY/REPO[:TAG][@DIGEST]``): what an image
in a layout, or in a registry, is made of."""

from __future__ import annotations

import argparse
import json
import re
import stat
from typing import Any

from layerforge.cli import remote_image
from layerforge.errors import LayoutError
from layerforge.layout.image_reader import checked_platform
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.image_config import check_config
from layerforge.model.reference import parse_layout_ref
from layerforge.trust.text import shown


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "inspect",
        help="show the manifest, config and layers of an image in a layout or a registry",
        description="Print the manifest digest, configuration and layers of LAYOUT_DIR[:REF] "
        "(REF may be omitted when the layout holds one image), or of an image in a registry: "
        "REGISTRY/REPO[:TAG][@DIGEST] when no such layout exists, or docker://NAME. A registry's "
        "manifests and configs are checked against their digests; trust and logins are those of push and pull.",
    )
    p.add_argument("target", metavar="LAYOUT_DIR[:REF]|REGISTRY/REPO[:TAG]")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--insecure", action="store_true", help="plain HTTP to the registry (loopback always uses it)")
    p.set_defaults(run=run)


def describe_manifest(layout: OciLayout, desc: Descriptor) -> dict[str, Any]:
    manifest = layout.read_manifest(desc)
    config_json = layout.read_json(manifest.config, "config")
    check_config(config_json, layout.where(manifest.config, "config"))
    if desc.platform is not None:
        checked_platform(layout, desc, manifest)
    diff_ids = (config_json.get("rootfs") or {}).get("diff_ids") or []
    layers = []
    for i, layer in enumerate(manifest.layers):
        _check_size(layout, layer, f"layer {i + 1}")
        entry = layer.to_json()
        if i < len(diff_ids):
            entry["diffId"] = diff_ids[i]
        layers.append(entry)
    return {
        "digest": desc.digest,
        "mediaType": desc.media_type,
        "size": desc.size,
        "platform": desc.platform.to_json() if desc.platform else None,
        "annotations": manifest.annotations,
        "config": {"digest": manifest.config.digest, "mediaType": manifest.config.media_type, **config_json},
        "layers": layers,
    }


def describe(layout: OciLayout, desc: Descriptor, ref: str | None) -> dict[str, Any]:
    if desc.media_type in media_types.INDEX_TYPES:
        index = layout.read_nested_index(desc)
        return {
            "reference": ref,
            "digest": desc.digest,
            "mediaType": desc.media_type,
            "size": desc.size,
            "annotations": index.annotations,
            "manifests": [
                describe_manifest(layout, m) if m.media_type in media_types.MANIFEST_TYPES else m.to_json()
                for m in index.manifests
            ],
        }
    return {"reference": ref, **describe_manifest(layout, desc)}


def _check_size(layout: OciLayout, desc: Descriptor, what: str) -> None:
    """A blob that is there must have the size its descriptor states (an absent one may be a
    foreign layer); only regular files count."""
    try:
        st = layout.blob_path(desc.digest).lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise LayoutError(f"'{layout.root}': {what} blob {desc.digest} is not a regular file")
    if st.st_size != desc.size:
        raise LayoutError(
            f"'{layout.root}': {what} blob {desc.digest} has {st.st_size} bytes, its descriptor says {desc.size}"
        )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _print_manifest(d: dict[str, Any], indent: str = "") -> None:
    cfg = d["config"]
    rc = cfg.get("config") or {}
    platform = f"{cfg.get('os')}/{cfg.get('architecture')}" + (f"/{cfg['variant']}" if cfg.get("variant") else "")
    print(f"{indent}Manifest:  {d['digest']} ({d['size']} bytes)")
    print(f"{indent}Platform:  {shown(platform)}")
    print(f"{indent}Created:   {shown(cfg.get('created', ''))}")
    print(f"{indent}Config:    {cfg['digest']}")
    for key in (
        "Entrypoint",
        "Cmd",
        "Env",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
    ):
        if key in rc:
            print(f"{indent}  {key}: {shown(json.dumps(rc[key], ensure_ascii=False), 4096)}")
    for k, v in sorted((d.get("annotations") or {}).items()):
        print(f"{indent}  annotation {shown(k)}={shown(v)}")
    total = sum(layer["size"] for layer in d["layers"])
    print(f"{indent}Layers:    {len(d['layers'])} ({_size(total)})")
    for layer in d["layers"]:
        kind = media_types.short_layer_type(layer["mediaType"])
        print(f"{indent}  {layer['digest']}  {_size(layer['size']):>10}  {shown(kind)}")


def _escape_controls(text: str) -> str:
    """JSON text with the control characters ``json.dumps`` leaves raw (DEL, C1, U+2028/9)
    written as ``\\uXXXX`` escapes: the same document, safe on a terminal."""
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_RAW_CONTROLS = re.compile("[\x7f-\x9f\u2028\u2029]")


def run(args: argparse.Namespace) -> int:
    name = remote_image.registry_reference(args.target, "TARGET")
    if name is not None:
        with remote_image.fetched(name, insecure=args.insecure) as layout:
            info = describe(layout, layout.resolve(remote_image.TAG), str(name))
    else:
        target = parse_layout_ref(args.target)
        layout = OciLayout.open(target.path)
        desc = layout.resolve(target.ref)
        info = describe(layout, desc, target.ref or desc.annotations.get("org.opencontainers.image.ref.name"))
    show(info, args.json)
    return 0


def show(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(_escape_controls(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False)))
        return
    print(f"Reference: {shown(info['reference'] or '(untagged)')}")
    if "manifests" in info:
        print(f"Index:     {info['digest']} ({len(info['manifests'])} manifests)")
        for m in info["manifests"]:
            if "config" in m:
                _print_manifest(m, indent="  ")
            else:
                print(f"  {shown(m['mediaType'])} {m['digest']}")
    else:
        _print_manifest(info)
