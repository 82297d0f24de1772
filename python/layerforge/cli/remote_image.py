"""Images named by a registry reference on commands that read layouts (``layerforge
inspect``): which arguments are such references, and their manifests and configs fetched
into a temporary layout (a shallow pull: every document checked against its digest, layers
left in the registry), with the trust and logins of ``push`` and ``pull``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from layerforge.layout.oci_layout import OciLayout, open_for_write
from layerforge.model.reference import split_layout_ref
from layerforge.registry import credentials, registries_conf
from layerforge.registry.client import RegistryClient
from layerforge.registry.connect import transport_options
from layerforge.registry.pull import pull_image
from layerforge.registry.reference import ImageName, parse_image_name
from layerforge.registry.transport import RetryPolicy, request_timeout

PREFIX = "docker://"
TAG = "remote"


def registry_reference(arg: str, option: str) -> ImageName | None:
    """The image ``arg`` names in a registry: ``docker://NAME``, or ``HOST[:PORT]/REPO...``
    when no layout of that name exists (a layout always wins); None for a layout."""
    if arg.startswith(PREFIX):
        return parse_image_name(arg[len(PREFIX) :], option)
    directory, _ = split_layout_ref(arg)
    first = arg.partition("/")[0]
    registry_like = "/" in arg and ("." in first or ":" in first or first == "localhost")
    if Path(directory).exists() or not registry_like:
        return None
    return parse_image_name(arg, option)


@contextlib.contextmanager
def fetched(name: ImageName, *, insecure: bool = False) -> Iterator[OciLayout]:
    """A temporary layout holding ``name``'s manifests and configs (every platform of an
    index), tagged :data:`TAG`; removed afterwards."""
    source = registries_conf.pull_sources(name, registries_conf.load())[-1]  # its location, not mirrors
    registry, deadline = source.name.registry, request_timeout(os.environ)
    client = RegistryClient(
        registry,
        credentials=credentials.lookup(registry),
        **transport_options(registry, insecure=insecure, conf_insecure=source.insecure, timeout=deadline),
        retry=RetryPolicy(attempts=3),
        pull_only=True,
        timeout=deadline,
    )
    with tempfile.TemporaryDirectory(prefix="layerforge-inspect-") as tmp:
        out = Path(tmp) / "layout"
        try:
            with open_for_write(out) as layout:
                pull_image(client, source.name, layout, tag=TAG, all_platforms=True, shallow=True)
        finally:
            client.close()
        yield OciLayout.open(out)


__all__ = ["PREFIX", "TAG", "fetched", "registry_reference"]
