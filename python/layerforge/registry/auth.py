"""Registry authentication: anonymous, Basic, and the Bearer token flow (challenge -> token
endpoint -> scoped token), with tokens reused per scope until they expire and refreshed on a
401. Error messages say where credentials came from, never what they are.

The Basic login goes to the token realm only if :func:`~layerforge.trust.origins.realm_may_receive_login`
allows it (the registry's own origin, or HTTPS); tokens go back to the registry's origin only
(the client attaches them). Token answers are read strictly: a JSON object with a string
``token`` (or ``access_token``) of visible ASCII and an optional numeric ``expires_in``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlencode

from layerforge.errors import LayerforgeError
from layerforge.registry import answers
from layerforge.registry.challenge import Challenge, parse_challenge
from layerforge.registry.credentials import Credentials, no_login
from layerforge.registry.errors import RegistryError
from layerforge.registry.transport import TOKEN_LIMIT, Response, RetryPolicy, Transport
from layerforge.trust.origins import realm_may_receive_login
from layerforge.trust.text import shown

_TOKEN = re.compile(r"[\x21-\x7e]+")
DEFAULT_LIFETIME = 60.0  # seconds, as Docker assumes when expires_in is absent or smaller
MAX_LIFETIME = 3600.0


class AuthError(RegistryError):
    pass


class Authenticator:
    def __init__(self, transport: Transport, credentials: Credentials | None, retry: RetryPolicy) -> None:
        self.transport = transport
        self.credentials = credentials
        self.retry = retry
        self.challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[frozenset[str], threading.Lock] = {}

    def who(self) -> str:
        return f"credentials from {self.credentials.source}" if self.credentials else "no credentials (anonymous)"

    def learn(self, resp: Response) -> None:
        header = resp.header("WWW-Authenticate")
        if not header:
            raise AuthError(f"{self.transport.registry} answered 401 without a WWW-Authenticate challenge", 401)
        with self._lock:
            self.challenge = parse_challenge(header)

    def forget(self, scopes: Sequence[str]) -> None:
        with self._lock:
            self._tokens.pop(frozenset(scopes), None)

    def headers(self, scopes: Sequence[str]) -> dict[str, str]:
        """The Authorization header for a request to the registry's own origin."""
        challenge = self.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthError(no_login(self.transport.registry), 401)
            return {"Authorization": self.credentials.basic_header()}
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(challenge, scopes)}"}
        raise AuthError(
            f"{self.transport.registry} asks for unsupported authentication {shown(challenge.scheme, limit=40)!r}", 401
        )

    def _token(self, challenge: Challenge, scopes: Sequence[str]) -> str:
        key = frozenset(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            fetch_lock = self._fetching.setdefault(key, threading.Lock())
        if cached and cached[1] > time.monotonic():
            return cached[0]
        with fetch_lock:  # one request per scope, however many workers need the token at once
            with self._lock:
                cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return self._fetch_token(challenge, scopes, key)

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str], key: frozenset[str]) -> str:
        registry = self.transport.registry
        realm_value = challenge.params.get("realm")
        if not realm_value:
            raise AuthError(f"{registry}: bearer challenge without a realm", 401)
        realm = self.transport.url(realm_value, what="token realm")
        headers = {"Accept": "application/json"}
        if self.credentials is not None:
            if not realm_may_receive_login(self.transport.origin, realm.origin):
                raise AuthError(
                    f"{registry}: the token realm {realm.origin} is another origin over plain HTTP; "
                    f"{self.who()} are not sent there (it must be HTTPS or {self.transport.origin})",
                    401,
                )
            headers["Authorization"] = self.credentials.basic_header()
        query = [("service", challenge.params["service"])] if "service" in challenge.params else []
        query += [("scope", s) for s in sorted(scopes)]
        url = realm.text + ("&" if "?" in realm.text else "?") + urlencode(query)
        resp = self.retry.run(
            f"{registry}: token request to {realm.origin}",
            lambda: self.transport.fetch("GET", url, headers, owner=realm.origin, limit=TOKEN_LIMIT),
        )
        if resp.status in (401, 403) and self.credentials is None:
            raise AuthError(no_login(registry), resp.status)
        if resp.status in (401, 403):
            raise AuthError(
                f"{registry}: the token service refused {self.who()} "
                f"for {', '.join(sorted(scopes))} (HTTP {resp.status}); check the login: podman login {registry}",
                resp.status,
            )
        if resp.status != 200:
            raise AuthError(f"{registry}: token service answered HTTP {resp.status}", resp.status)
        token, lifetime = self._read_answer(resp, str(realm.origin))
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, lifetime / 2))
        return token

    def _read_answer(self, resp: Response, where: str) -> tuple[str, float]:
        """(token, lifetime in seconds) from a token service's answer."""
        what = f"{self.transport.registry}: the token service at {where}"
        try:
            data = answers.json_body(resp.body, f"{what} answered something that")
        except LayerforgeError as e:
            raise AuthError(str(e)) from None
        if not isinstance(data, dict):
            raise AuthError(f"{what} answered a JSON {type(data).__name__}, not an object")
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise AuthError(f"{what} sent no usable token (a string of visible ASCII characters)")
        expires = data.get("expires_in")
        if expires is None:
            return token, DEFAULT_LIFETIME
        if isinstance(expires, bool) or not isinstance(expires, (int, float)) or not math.isfinite(expires):
            raise AuthError(f"{what} sent expires_in {shown(repr(expires), limit=40)}, not a number of seconds")
        if expires >= MAX_LIFETIME:  # also ints too large for a float
            return token, MAX_LIFETIME
        return token, max(float(expires), DEFAULT_LIFETIME)
