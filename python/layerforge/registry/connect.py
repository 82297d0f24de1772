"""How a command reaches one registry: plain HTTP for ``--insecure`` (and loopback), HTTPS
without certificate checks or plain HTTP for a registry registries.conf calls insecure (as
podman does), verified HTTPS otherwise."""

from __future__ import annotations

from layerforge.registry.insecure import transport_mode
from layerforge.trust.hosts import is_loopback


def transport_options(registry: str, *, insecure: bool, conf_insecure: bool, timeout: float) -> dict[str, bool]:
    """The ``insecure``/``verify`` arguments of :class:`~layerforge.registry.client.RegistryClient`."""
    if insecure:
        return {"insecure": True}
    if conf_insecure and not is_loopback(registry):
        return transport_mode(registry, timeout)
    return {}
