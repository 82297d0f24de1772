"""A KraftKit package name (``unikraft.org/helloworld:latest``): registry, repository, tag.

KraftKit parses names with ``unikraft.org`` as the default registry for some purposes and
with none for others, so a name without a registry is stored in two different places; we
always write the fully-qualified form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerforge.errors import UsageError
from layerforge.trust.text import shown

DEFAULT_REGISTRY = "unikraft.org"
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?\Z")


@dataclass(frozen=True)
class PackageName:
    registry: str
    repository: str
    tag: str

    @property
    def repo(self) -> str:
        """``registry/repository`` (``org.opencontainers.image.ref.name`` in kraftkit)."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        return f"{self.repo}:{self.tag}"


def parse_package_name(name: str, default_tag: str, option: str = "--name") -> PackageName:
    rest, tag = name, default_tag
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = name.rsplit(":", 1)
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if not _REGISTRY.match(registry):
        raise UsageError(option, f"{shown(repr(name))}: {shown(repr(registry))} is not a registry host[:port]")
    if not _PATH.match(path):
        raise UsageError(
            option,
            f"{shown(repr(name))}: {shown(repr(path))} is not a valid repository (lowercase, digits, . _ - separators)",
        )
    if not _TAG.match(tag):
        raise UsageError(option, f"{shown(repr(name))}: {shown(repr(tag))} is not a valid tag")
    return PackageName(registry, path, tag)


def default_package_name(kernel_name: str, tag: str) -> PackageName:
    """``unikraft.org/<app>`` from a kernel file name such as ``helloworld_qemu-x86_64``."""
    stem = kernel_name.split("_", 1)[0].split(".", 1)[0].lower()
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "unikernel"
    return parse_package_name(stem, tag if _TAG.match(tag) else "latest")
