"""Which hosts a registry request may go to and which origins may receive a credential: the
rules alone, in the standard library only (Python 3.9 and later), so that the Pants plugin,
which runs inside Pants and cannot import the tool, uses this same file (shipped byte for
byte as ``pants-plugins/layerforge_pants/goals/hosts.py``; ``tests/test_remote_tag.py`` keeps
the two equal: edit this one, then copy it) for the digest lookup it makes when a BUILD file
is parsed. :mod:`layerforge.trust.origins` puts the tool's errors on them.

A registry is ``host[:port]`` and owns one origin (RFC 6454: scheme, host, port). Loopback
registries (plain HTTP without ``--insecure``) are ``localhost`` itself, an IPv4 literal in
127.0.0.0/8 or the IPv6 literal ``[::1]``; a host *name* that looks like one
(``127.0.0.1.nip.io``) is not. ``tests/vectors/registry_hosts.json`` holds the cases.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_MAX_HOST = 253
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL = 8192


class UrlRefused(ValueError):
    """A URL or registry a request may not go to; the message says why, as words that follow
    the value (``... is not an http(s) URL``)."""


@dataclass(frozen=True)
class Origin:
    scheme: str  # "http" or "https"
    host: str  # lower case; IPv6 literals in brackets
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Url:
    """An absolute http(s) URL that passed :func:`split_url`."""

    text: str
    origin: Origin
    netloc: str  # as written (what the Host header carries)
    target: str  # path and query, the request target

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def split_host_port(registry: str) -> tuple[str, str | None] | None:
    """``host[:port]`` or ``[v6][:port]`` -> (host, port), None when it is neither."""
    if registry.startswith("["):
        end = registry.find("]")
        if end < 0:
            return None
        host, rest = registry[: end + 1], registry[end + 1 :]
        if not rest:
            return host, None
        return (host, rest[1:]) if rest.startswith(":") else None
    host, sep, port = registry.partition(":")
    if ":" in port:
        return None
    return host, (port if sep else None)


def _ipv4_literal(host: str) -> tuple[int, ...] | None:
    """The four octets of a strict dotted-quad literal (no leading zeros, no short forms)."""
    parts = host.split(".")
    if len(parts) != 4 or not all(_OCTET.fullmatch(p) and int(p) <= 255 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _ipv6_literal(host: str) -> ipaddress.IPv6Address | None:
    """``[...]`` holding an IPv6 address without a zone index."""
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else None
    if not inner or "%" in inner:
        return None
    try:
        return ipaddress.IPv6Address(inner)
    except ValueError:
        return None


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        return _ipv6_literal(host) is not None
    return 0 < len(host) <= _MAX_HOST and all(_LABEL.fullmatch(label) for label in host.split("."))


def valid_registry(registry: str) -> bool:
    """``host[:port]``: a DNS name (letters, digits, inner hyphens; dot-separated labels of at
    most 63), an IPv4 literal or a bracketed IPv6 literal; port 1-65535."""
    split = split_host_port(registry)
    if split is None:
        return False
    host, port = split
    if port is not None and not (_PORT.fullmatch(port) and 0 < int(port) <= 65535):
        return False
    return _valid_host(host)


def is_loopback(registry: str) -> bool:
    """``localhost``, an IPv4 literal in 127.0.0.0/8 or ``[::1]``, with or without a port."""
    split = split_host_port(registry)
    if split is None or not valid_registry(registry):
        return False
    host = split[0]
    if host == "localhost":
        return True
    octets = _ipv4_literal(host)
    if octets is not None:
        return octets[0] == 127
    return _ipv6_literal(host) == _IPV6_LOOPBACK


def registry_origin(registry: str, scheme: str) -> Origin:
    """The origin of ``registry`` over ``scheme``; :class:`UrlRefused` if it is no registry."""
    split = split_host_port(registry)
    if split is None or not valid_registry(registry):
        raise UrlRefused("is not a registry host[:port]")
    host, port = split
    return Origin(scheme, host.lower(), int(port) if port else DEFAULT_PORTS[scheme])


def split_url(url: str) -> Url:
    """An absolute ``http``/``https`` URL to send a request to. Refused (:class:`UrlRefused`):
    other schemes, user info, hosts that are not DNS names or IP literals, anything but
    printable ASCII."""
    if len(url) > MAX_URL or any(not 0x21 <= ord(c) <= 0x7E for c in url):
        raise UrlRefused("is not a URL layerforge sends requests to")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UrlRefused("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused("is not an http(s) URL")
    if "@" in parts.netloc or not valid_registry(parts.netloc):
        raise UrlRefused("does not name a host[:port] (user info is refused)")
    host, port = split_host_port(parts.netloc) or (parts.netloc, None)
    origin = Origin(scheme, host.lower(), int(port) if port else DEFAULT_PORTS[scheme])
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/"):
        raise UrlRefused("has no absolute path")
    return Url(text=f"{scheme}://{parts.netloc}{target}", origin=origin, netloc=parts.netloc, target=target)


def may_carry_credentials(owner: Origin, target: Origin) -> bool:
    """Credentials and tokens of ``owner`` go to ``owner`` only."""
    return owner == target


def realm_may_receive_login(registry: Origin, realm: Origin) -> bool:
    """The Basic login for a Bearer token: the registry's own origin, or HTTPS elsewhere. The
    plugin's anonymous digest lookup asks no other realm at all: never plain HTTP elsewhere."""
    return realm == registry or realm.scheme == "https"
