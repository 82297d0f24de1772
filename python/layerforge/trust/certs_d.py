"""Per-registry TLS trust as containers-certs.d(5) and Docker keep it: a directory named after
the registry (``HOST[:PORT]``, as the image reference writes it) under
``~/.config/containers/certs.d``, ``/etc/containers/certs.d`` or ``/etc/docker/certs.d`` (the
first that exists, as podman, skopeo and buildah take it), holding CA certificates (``*.crt``)
added to the system's, and client certificates (``NAME.cert`` with ``NAME.key``) for mutual
TLS. The system's CAs, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` keep working as OpenSSL reads
them.

Standard library only (Python 3.9 and later): the Pants plugin's digest lookup uses this same
file (shipped byte for byte as ``pants-plugins/layerforge_pants/goals/certs_d.py``;
``tests/test_remote_tag.py`` keeps the two equal: edit this one, then copy it).
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")
#: Files of a certs.d directory read at most (a CA bundle is far smaller).
MAX_FILE = 1 << 20


class CertsRefused(ValueError):
    """A certs.d file that cannot be used; the message names it and what to do."""


@dataclass(frozen=True)
class RegistryCerts:
    """What the certs.d directory of one registry holds."""

    directory: Path | None
    cas: tuple[Path, ...] = ()
    client: tuple[Path, Path] | None = None  # (certificate, key)


def roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The certs.d roots in the order they are looked at: the user's, then the system's."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    return [Path(home) / ".config" / "containers" / "certs.d", *map(Path, SYSTEM_DIRS)]


def places(registry: str, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where a certs.d directory of ``registry`` (``host[:port]``) may be, in order."""
    return [root / registry for root in roots(environ)]


def registry_certs(registry: str, environ: Mapping[str, str] | None = None) -> RegistryCerts:
    """The CAs and client certificate of the first certs.d directory of ``registry`` that
    exists. A ``.cert`` without its ``.key`` (or the reverse) raises :class:`CertsRefused`."""
    if registry in ("", ".", "..") or "/" in registry or "\0" in registry:
        return RegistryCerts(None)
    for directory in places(registry, environ):
        if directory.is_dir():
            return _read_dir(directory)
    return RegistryCerts(None)


def _read_dir(directory: Path) -> RegistryCerts:
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise CertsRefused(f"cannot read the certs.d directory '{directory}': {e.strerror}") from None
    cas = tuple(directory / n for n in names if n.endswith(".crt"))
    certs = {n[: -len(".cert")] for n in names if n.endswith(".cert")}
    keys = {n[: -len(".key")] for n in names if n.endswith(".key")}
    for stem in sorted(certs - keys):
        raise CertsRefused(f"'{directory / (stem + '.cert')}' has no key: put {stem}.key beside it (or remove it)")
    for stem in sorted(keys - certs):
        raise CertsRefused(f"'{directory / (stem + '.key')}' has no certificate: put {stem}.cert beside it")
    pair = sorted(certs)[0] if certs else None
    client = (directory / f"{pair}.cert", directory / f"{pair}.key") if pair is not None else None
    return RegistryCerts(directory, cas, client)


def read_file(path: Path, limit: int = MAX_FILE) -> bytes:
    """At most ``limit`` + 1 bytes of the regular file ``path`` (symlinks followed); opened
    without blocking, so that a FIFO or device in its place is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise CertsRefused(f"cannot read '{path}': {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CertsRefused(f"'{path}' is not a regular file")
        return f.read(limit + 1)


def _pem(path: Path) -> str:
    data = read_file(path)
    if len(data) > MAX_FILE:
        raise CertsRefused(f"'{path}' is larger than {MAX_FILE >> 20} MiB; it is no certificate file")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise CertsRefused(f"'{path}' is not a PEM file (CA certificates in certs.d are PEM)") from None


def _encrypted(key: Path) -> str:
    """OpenSSL asks for a password: refuse (it would prompt on the terminal, or hang)."""
    raise CertsRefused(f"'{key}' is encrypted; certs.d keys are read without a password: store it decrypted")


def tls_context(registry: str, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A certificate-verifying TLS client context for ``registry``: the system's CAs (and
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``) plus its certs.d CAs and client certificate."""
    found = registry_certs(registry, environ)
    ctx = ssl.create_default_context()
    for ca in found.cas:
        pem = _pem(ca)
        try:
            ctx.load_verify_locations(cadata=pem)
        except (ssl.SSLError, ValueError):
            raise CertsRefused(f"'{ca}' holds no PEM CA certificate that can be used") from None
    if found.client is not None:
        cert, key = found.client
        for path in found.client:  # OpenSSL opens them itself: a FIFO would block it
            read_file(path)
        try:
            ctx.load_cert_chain(cert, key, password=lambda: _encrypted(key))
        except OSError as e:  # ssl.SSLError is an OSError
            reason = getattr(e, "reason", None) or e.strerror or "unusable"
            raise CertsRefused(f"client certificate '{cert}' with key '{key}' cannot be used ({reason})") from None
    return ctx
