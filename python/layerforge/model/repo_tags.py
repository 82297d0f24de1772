"""Docker image names (``repository:tag``) of an image in a layout, as runtimes want them.

An index entry names its image with ``org.opencontainers.image.ref.name`` (often a bare tag,
``1.0``) and, where the writer knew the repository, ``io.containerd.image.name`` (the full
``repository:tag``, as containerd and BuildKit write and read it). ``docker load`` archives and
runtimes need the latter shape.
"""

from __future__ import annotations

import re

from layerforge.errors import LayerforgeError
from layerforge.model.annotations import REF_NAME
from layerforge.model.descriptor import Descriptor
from layerforge.trust.text import shown

IMAGE_NAME = "io.containerd.image.name"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)"
_DOCKER_REF = re.compile(rf"^({_HOST}?{_COMPONENT}(?:/{_COMPONENT})*):([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})\Z")


def parse_repo_tag(value: str, option: str = "--tag") -> tuple[str, str]:
    """Split ``name:tag`` as docker expects it (lowercase repository, explicit tag)."""
    m = _DOCKER_REF.match(value)
    if not m:
        raise LayerforgeError(f"{option}: {shown(repr(value))} is not a docker image name of the form NAME:TAG")
    return m.group(1), m.group(2)


def is_repo_tag(value: str) -> bool:
    return _DOCKER_REF.match(value) is not None


def default_repo_tags(entry: Descriptor, ref: str | None) -> list[str]:
    """The entry's ``io.containerd.image.name`` when it is a docker name, else the ref (given or
    the entry's ref name) when it has that shape, else none."""
    named = entry.annotations.get(IMAGE_NAME)
    if named and is_repo_tag(named):
        return [named]
    ref_name = ref or entry.annotations.get(REF_NAME)
    return [ref_name] if ref_name and is_repo_tag(ref_name) else []
