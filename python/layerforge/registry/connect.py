"""How a command reaches one registry: plain HTTP for ``--insecure`` (and loopback), HTTPS
without certificate checks or plain HTTP for a registry registries.conf calls insecure (as
podman does), verified HTTPS otherwise; and the client of a push's target, with its login."""

from __future__ import annotations

from layerforge.registry import credentials, registries_conf
from layerforge.registry.client import RegistryClient
from layerforge.registry.insecure import transport_mode
from layerforge.registry.reference import ImageName
from layerforge.registry.transport import RetryPolicy
from layerforge.trust.hosts import is_loopback


def transport_options(registry: str, *, insecure: bool, conf_insecure: bool, timeout: float) -> dict[str, bool]:
    """The ``insecure``/``verify`` arguments of :class:`~layerforge.registry.client.RegistryClient`."""
    if insecure:
        return {"insecure": True}
    if conf_insecure and not is_loopback(registry):
        return transport_mode(registry, timeout)
    return {}


def target_client(
    target: ImageName,
    *,
    insecure: bool,
    retries: int,
    timeout: float,
    chunk_size: int | None = None,
    pull_only: bool = False,
) -> RegistryClient:
    """The client of the repository a command writes to (or reads its own objects from): its
    login, and registries.conf's ``insecure`` for it."""
    conf_insecure = registries_conf.push_insecure(target, registries_conf.load())
    return RegistryClient(
        target.registry,
        credentials=credentials.lookup(target.registry),
        **transport_options(target.registry, insecure=insecure, conf_insecure=conf_insecure, timeout=timeout),
        retry=RetryPolicy(attempts=retries),
        chunk_size=chunk_size,
        timeout=timeout,
        pull_only=pull_only,
    )
