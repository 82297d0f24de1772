"""Registry authentication: anonymous, Basic, and the Bearer token flow (challenge -> token
endpoint -> scoped token), with tokens reused per scope until they expire and refreshed on a
401. Error messages say where credentials came from, never what they are."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlencode

from layerforge.registry.challenge import Challenge, parse_challenge
from layerforge.registry.credentials import Credentials
from layerforge.registry.transport import RegistryError, Response, RetryPolicy, Transport


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
        challenge = self.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise AuthError(f"{self.transport.registry} requires a login and no credentials were found", 401)
            return {"Authorization": self.credentials.basic_header()}
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(challenge, scopes)}"}
        raise AuthError(f"{self.transport.registry} asks for unsupported authentication {challenge.scheme!r}", 401)

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
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthError(f"{self.transport.registry}: bearer challenge without a realm", 401)
        query = [("service", challenge.params["service"])] if "service" in challenge.params else []
        query += [("scope", s) for s in sorted(scopes)]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {"Accept": "application/json"}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic_header()
        resp = self.retry.run("token request", lambda: self.transport.send("GET", url, headers))
        if resp.status in (401, 403):
            raise AuthError(
                f"{self.transport.registry}: the token service refused {self.who()} "
                f"for {', '.join(sorted(scopes))} (HTTP {resp.status})",
                resp.status,
            )
        if resp.status != 200:
            raise AuthError(f"{self.transport.registry}: token service answered HTTP {resp.status}", resp.status)
        try:
            data = json.loads(resp.body)
            token = str(data.get("token") or data["access_token"])
            lifetime = float(data.get("expires_in") or 60)
        except (ValueError, KeyError):
            raise AuthError(f"{self.transport.registry}: token service sent an unreadable answer") from None
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, lifetime / 2))
        return token
