"""A registry reference (``docker://REGISTRY/REPO[:TAG|@DIGEST]``) as a layout to compare:
the image (one platform: ``--platform`` or, for an index, the one pull picks) is pulled into
a scratch layout with the same client, checks and bounds as ``layerforge pull``."""

from __future__ import annotations

import os
from pathlib import Path

from layerforge.layout.oci_layout import open_for_write
from layerforge.model.reference import LayoutRef
from layerforge.registry import credentials
from layerforge.registry.client import RegistryClient
from layerforge.registry.pull import parse_platform, pull_image
from layerforge.registry.reference import parse_image_name
from layerforge.registry.transport import request_timeout

PREFIX = "docker://"
_REF = "diff"


def is_registry_reference(arg: str) -> bool:
    return arg.startswith(PREFIX)


def pull_for_diff(arg: str, dest: Path, *, platform: str | None, insecure: bool) -> LayoutRef:
    name = parse_image_name(arg.removeprefix(PREFIX), "A/B")
    client = RegistryClient(
        name.registry,
        credentials=credentials.lookup(name.registry),
        insecure=insecure,
        timeout=request_timeout(os.environ),
        pull_only=True,
    )
    try:
        with open_for_write(dest) as layout:
            pull_image(client, name, layout, tag=_REF, platforms=[parse_platform(platform)] if platform else [])
    finally:
        client.close()
    return LayoutRef(dest, _REF)
