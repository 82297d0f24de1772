"""Origins (RFC 6454: scheme, host, port) and which of them may receive a credential.

A push names one registry, ``host[:port]``; the registry owns one origin and its credentials
and tokens go to that origin only. URLs a registry sends back (upload ``Location``, redirects,
the token ``realm``) are untrusted: they are checked here before anything is sent to them,
and a request to another origin carries no ``Authorization`` header. The one exception is
the token service of the Bearer flow, which may live elsewhere (``auth.docker.io`` for
Docker Hub): it receives the Basic credentials only over HTTPS, as Docker sends them.

Loopback registries (plain HTTP without ``--insecure``) are ``localhost`` itself, an IPv4
literal in 127.0.0.0/8 or the IPv6 literal ``[::1]``; a host *name* that looks like one
(``127.0.0.1.nip.io``) is not. ``tests/vectors/registry_hosts.json`` holds the cases the
client passes (the native command follows the push's receipt and decides nothing about hosts).
The rules themselves are :mod:`layerforge.trust.hosts` (standard library only: the Pants
plugin's digest lookup runs the same file); this module puts the tool's errors on them.
"""

from __future__ import annotations

from urllib.parse import urljoin

from layerforge.errors import LayerforgeError
from layerforge.trust import hosts
from layerforge.trust.hosts import (
    DEFAULT_PORTS,
    MAX_URL,
    Origin,
    Url,
    UrlRefused,
    is_loopback,
    may_carry_credentials,
    realm_may_receive_login,
    valid_registry,
)
from layerforge.trust.text import shown

__all__ = [
    "DEFAULT_PORTS",
    "MAX_URL",
    "Origin",
    "OriginError",
    "Url",
    "is_loopback",
    "may_carry_credentials",
    "parse_url",
    "realm_may_receive_login",
    "registry_origin",
    "resolve",
    "valid_registry",
]


class OriginError(LayerforgeError):
    """A URL or host that is not one a request may go to."""


def registry_origin(registry: str, scheme: str) -> Origin:
    try:
        return hosts.registry_origin(registry, scheme)
    except UrlRefused as e:
        raise OriginError(f"{shown(registry)!r} {e}") from None


def parse_url(url: str, what: str) -> Url:
    """An absolute ``http``/``https`` URL to send a request to (see :func:`hosts.split_url`);
    ``what`` names it in the error."""
    try:
        return hosts.split_url(url)
    except UrlRefused as e:
        raise OriginError(f"{what} {shown(url, limit=200)!r} {e}") from None


def resolve(base: Url, reference: str, what: str) -> Url:
    """``reference`` (a ``Location`` value: absolute, or relative to the request that answered
    it, as RFC 9110 says) as a checked absolute URL."""
    if len(reference) > MAX_URL or any(not 0x21 <= ord(c) <= 0x7E for c in reference):
        raise OriginError(f"{what} {shown(reference, limit=200)!r} is not a URL layerforge sends requests to")
    try:
        joined = urljoin(base.text, reference)
    except ValueError:
        raise OriginError(f"{what} {shown(reference, limit=200)!r} is not a valid URL") from None
    return parse_url(joined.split("#", 1)[0], what)
