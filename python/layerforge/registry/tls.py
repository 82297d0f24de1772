"""TLS for registry requests: the context of each host (its certs.d CAs and client
certificate, see :mod:`layerforge.trust.certs_d`), and the one-line errors of TLS failures,
none of which is worth another attempt: an untrusted certificate (with the three ways to
trust its CA), a client certificate the registry wants or refuses, and plain HTTP
(``--insecure``) spoken to an HTTPS registry."""

from __future__ import annotations

import http.client
import ssl

from layerforge.registry.errors import RegistryError
from layerforge.trust.certs_d import CertsRefused, places, tls_context
from layerforge.trust.text import shown

#: What Go's net/http (the CNCF distribution registry) answers plain HTTP with on a TLS port.
_GO_PLAIN_ON_TLS = b"Client sent an HTTP request to an HTTPS server"
#: OpenSSL's X509 verification codes that mean "no trusted CA issued this certificate".
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
#: TLS alerts a server sends when it wants a (different) client certificate.
_CLIENT_CERT_ALERTS = frozenset(
    {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA"}
)


class TlsError(RegistryError):
    """A TLS failure another attempt would not change."""


def context_for(netloc: str, *, verify: bool = True) -> ssl.SSLContext:
    """The context for requests to ``netloc`` (``host[:port]`` as the URL writes it): verifying,
    unless ``verify`` is False (a registry registries.conf calls insecure)."""
    try:
        ctx = tls_context(netloc)
    except CertsRefused as e:
        raise TlsError(str(e)) from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _certs_d(host: str) -> str:
    user, system, docker = places(host)
    return f"{system / 'ca.crt'} (or {user}/, {docker}/)"


def untrusted(host: str, error: ssl.SSLCertVerificationError) -> TlsError:
    reason = shown(error.verify_message or error.reason or "verification failed", limit=200)
    if error.verify_code not in _UNKNOWN_ISSUER:
        return TlsError(f"{host}: the TLS certificate is refused ({reason})")
    return TlsError(
        f"{host}: the TLS certificate is not trusted ({reason}); trust the CA that issued it in one of three ways: "
        f"put it in {_certs_d(host)}, add it to the system's CAs (update-ca-certificates), "
        "or name a bundle holding it in SSL_CERT_FILE"
    )


def client_certificate_refused(host: str, error: ssl.SSLError) -> TlsError | None:
    """The error for a TLS alert asking for a client certificate; None for other TLS errors."""
    if error.reason not in _CLIENT_CERT_ALERTS:
        return None
    return TlsError(
        f"{host} wants a client certificate it trusts (TLS alert {error.reason}): put NAME.cert and NAME.key "
        f"in {places(host)[1]}/ (or {places(host)[0]}/)"
    )


def plain_http_to_tls(registry: str) -> TlsError:
    return TlsError(
        f"{registry} speaks HTTPS, but plain HTTP was asked (--insecure, or `insecure` in the registry's "
        "configuration): drop it, and trust the registry's CA if it is a private one"
    )


def is_plain_on_tls(resp: http.client.HTTPResponse, body: bytes) -> bool:
    """Whether an answer to a plain-HTTP request is a TLS server saying it wants TLS (Go's
    bare HTTP/1.0 400, whose body a HEAD does not show)."""
    if resp.status != 400 or resp.version != 10 or resp.getheader("Content-Type") not in (None, "text/plain"):
        return False
    return body.startswith(_GO_PLAIN_ON_TLS) or not body


def is_tls_record(error: BaseException) -> bool:
    """Whether a plain-HTTP answer was a TLS record (an alert: a TLS server that is not Go's)."""
    return isinstance(error, http.client.BadStatusLine) and str(error).startswith(("'\\x15\\x03", "\x15\x03"))
