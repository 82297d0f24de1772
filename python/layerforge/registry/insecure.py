"""Registries that registries.conf calls ``insecure``: as podman treats them, HTTPS without
checking the certificate when the registry speaks TLS, plain HTTP when it does not. One TLS
handshake (bounded in time) tells which."""

from __future__ import annotations

import socket
import ssl

from layerforge.trust.hosts import DEFAULT_PORTS, split_host_port


def speaks_tls(registry: str, timeout: float) -> bool:
    """Whether ``registry`` (``host[:port]``) completes a TLS handshake; True when it cannot be
    reached at all (the request that follows says why)."""
    host, port = split_host_port(registry) or (registry, None)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    address = (host.strip("[]"), int(port or DEFAULT_PORTS["https"]))
    try:
        with socket.create_connection(address, timeout) as raw, ctx.wrap_socket(raw, server_hostname=address[0]):
            return True
    except ssl.SSLError:
        return False
    except (OSError, ValueError):
        return True


def transport_mode(registry: str, timeout: float) -> dict[str, bool]:
    """The :class:`~layerforge.registry.client.RegistryClient` arguments for an insecure registry."""
    return {"verify": False} if speaks_tls(registry, timeout) else {"insecure": True}
