"""Image references: ``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``, normalised like Docker does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerforge import option_rules
from layerforge.errors import UsageError
from layerforge.option_rules import RuleError
from layerforge.trust.origins import is_loopback, valid_registry

__all__ = [
    "DOCKER_HUB",
    "ImageName",
    "is_digest",
    "is_loopback",
    "parse_image_name",
    "valid_repository",
    "validate_tag",
]

DOCKER_HUB = "registry-1.docker.io"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageName:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def with_tag(self, tag: str) -> ImageName:
        return ImageName(self.registry, self.repository, validate_tag(tag), None)


def validate_tag(tag: str, option: str = "--tag") -> str:
    try:
        return str(option_rules.check("image.tag", tag))
    except RuleError as e:
        raise UsageError(option, str(e)) from None


def parse_image_name(value: str, option: str = "TARGET") -> ImageName:
    rest, digest = value, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise UsageError(option, f"{value!r}: {digest!r} is not a sha256 digest")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        validate_tag(tag, option)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
        if not valid_registry(registry):
            raise UsageError(option, f"{value!r}: {registry!r} is not a registry host[:port] (DNS name or IP literal)")
    else:
        registry, repository = DOCKER_HUB, rest if "/" in rest else f"library/{rest}"
    if not valid_repository(repository):
        raise UsageError(option, f"{value!r}: {repository!r} is not a valid repository name (lowercase)")
    return ImageName(registry=registry, repository=repository, tag=tag, digest=digest)


def valid_repository(name: str) -> bool:
    """``component ("/" component)*`` of lower-case letters and digits and separators."""
    try:
        option_rules.check("image.repository", name)
    except RuleError:
        return False
    return True


def is_digest(value: str) -> bool:
    """``sha256:`` and 64 lower-case hex digits, nothing around it."""
    return _DIGEST.fullmatch(value) is not None
