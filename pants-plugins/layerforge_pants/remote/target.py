"""The remote_oci_image target: an image in a registry, pinned by digest, usable wherever an
image target is (`base_image`, `source_image`, `rootfs_image`). Pulled by `layerforge pull`
in a Pants process keyed by the digest (see `pull.py`)."""

from __future__ import annotations

import re
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    InvalidFieldException,
    StringField,
    StringSequenceField,
)
from pants.util.strutil import help_text

from layerforge_pants.goals.pull import PulledTarget, RemoteImageRequest
from layerforge_pants.goals.roles import BASE, IMAGE, INDEX_ENTRY, NYDUS_SOURCE
from layerforge_pants.remote.tag import resolve_digest

# REGISTRY/REPO[:TAG][@sha256:HEX], with REGISTRY a host[:port] (a DNS name, IPv4 literal or
# localhost) and REPO the distribution spec's lowercase path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<registry>(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::[0-9]{{1,5}})?)/(?P<repo>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z"
)
_PLATFORM = re.compile(r"[a-z0-9]{1,32}/[a-z0-9_]{1,32}(?:/[a-z0-9]{1,16})?\Z")


def repository_and_tag(image: str) -> tuple[str, str]:
    """``REGISTRY/REPO`` and the tag (``latest`` when none) of a checked `image` value: the
    name `pants run` gives the image in the container runtime."""
    m = _IMAGE.match(image)
    assert m is not None, image
    return f"{m.group('registry')}/{m.group('repo')}", m.group("tag") or "latest"


def _registry_like(host: str) -> bool:
    return "." in host or ":" in host or host == "localhost"


class RemoteImageField(StringField):
    alias = "image"
    required = True
    help = help_text(
        """
        `REGISTRY/REPO[:TAG]@sha256:...`: the image, pinned by its manifest (or index) digest.
        The tag is only a reminder; the digest is what is pulled, so the pull is a cacheable
        process. A value without a digest is an error that shows the digest the tag names now.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        assert value is not None
        m = _IMAGE.match(value)
        if m is None or not _registry_like(m.group("registry")):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} must be REGISTRY/REPO[:TAG]@sha256:DIGEST with a registry "
                f"host (e.g. `registry.example.com/team/base:1.0@sha256:...`); got {value!r}."
            )
        if m.group("digest") is None:
            tag = m.group("tag") or "latest"
            try:
                now = resolve_digest(m.group("registry"), m.group("repo"), tag)
                hint = f'; the tag names {now} now: image="{m.group("registry")}/{m.group("repo")}:{tag}@{now}"'
            except ValueError as e:
                hint = f" (the digest {tag!r} names now is unknown: {e})"
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} has no digest: {value!r}. A remote image is pinned by "
                f"digest{hint}"
            )
        return value


class RemotePlatformsField(StringSequenceField):
    alias = "platforms"
    default = ()
    help = help_text(
        """
        Platforms (`OS/ARCH[/VARIANT]`) to pull from an index: one gives that platform's image
        manifest, several an index of exactly them. Empty (the default) pulls the image as its
        digest names it, every platform of an index, so the result never depends on the
        machine that pulls it.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[tuple[str, ...]], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for p in value or ():
            if not _PLATFORM.match(p):
                raise InvalidFieldException(
                    f"The `{cls.alias}` field of {address} holds {p!r}, not OS/ARCH[/VARIANT] (e.g. linux/amd64)."
                )
        return value


class RemoteOciImageTarget(PulledTarget):
    alias = "remote_oci_image"
    roles = frozenset({IMAGE, BASE, NYDUS_SOURCE, INDEX_ENTRY})
    core_fields = (*COMMON_TARGET_FIELDS, RemoteImageField, RemotePlatformsField)
    help = help_text(
        """
        An image in a registry, pinned by digest (`layerforge pull`): usable as the `base_image`
        of a `nix_oci_image`, the `source_image` of a `nydus_image` and the `rootfs_image` of a
        `unikraft_image`. Every blob is checked against its digest as it is pulled; the pull is a
        Pants process keyed by the digest, so a remote cache shares it. Logins and CAs come from
        where podman and docker keep them (`[layerforge].registry_env_vars`); a registry that
        wants them is pulled from by an uncached process, so they never enter a cache key.
        """
    )

    def pull_request(self, shallow: bool = False) -> RemoteImageRequest:
        """The pull of the pinned image, for the platforms the target names."""
        return RemoteImageRequest.of(
            self.address, self[RemoteImageField].value, self[RemotePlatformsField].value, shallow
        )
