"""Registry credentials from the places Podman, skopeo and Docker keep them, in
containers-auth.json(5) order (:mod:`layerforge.trust.auth_files`), including ``credHelpers``
and ``credsStore`` helpers.

Secrets are wrapped in :class:`Secret`, whose ``repr``/``str`` never show the value, so they
cannot end up in logs, exception messages or outputs by accident.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerforge.errors import LayerforgeError, LayoutError
from layerforge.trust.auth_files import (
    HELPER_NAME,
    EntryRefused,
    HelperFailed,
    aliases,
    auth_files,
    entry_login,
    helper_login,
    host_key,
)
from layerforge.trust.blobs import BlobMissing, read_document
from layerforge.trust.text import shown


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret
    source: str  # where they came from, for error messages (never the secret)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode()


class CredentialError(LayerforgeError):
    pass


__all__ = ["CredentialError", "Credentials", "Secret", "auth_files", "lookup", "no_login"]


def no_login(registry: str, what: str = "") -> str:
    """What a missing login for ``registry`` says: where it was looked for and what fixes it
    (``what``: the request refused to anonymous access, when a registry refused one)."""
    where = ", ".join(str(f) for f in auth_files())
    said = (
        f"refused {what} to anonymous access (it requires a login, or has no such repository); no login was found"
        if what
        else "requires a login and none was found"
    )
    return (
        f"{registry} {said} "
        f"(looked in {where}, and their credential helpers): "
        f"run `podman login {registry}` (or `docker login {registry}`)"
    )


MAX_FILE = 4 << 20


def _load(f: Path) -> dict[str, Any] | None:
    """An auth file as a JSON object; None if it does not exist."""
    try:
        data = read_document(f, f"credentials file '{f}'", limit=MAX_FILE, follow=True)
    except BlobMissing:
        return None
    except LayoutError as e:
        raise CredentialError(str(e)) from None
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        raise CredentialError(f"cannot read credentials file '{f}': it is not valid JSON") from None
    if not isinstance(config, dict):
        raise CredentialError(f"credentials file '{f}' is not a JSON object")
    return config


def _table(config: dict[str, Any], key: str, f: Path, values: type) -> dict[str, Any]:
    """``config[key]``: an object whose values are all of type ``values`` (empty if absent)."""
    table = config.get(key) or {}
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, values) for k, v in table.items()):
        raise CredentialError(f"credentials file '{f}': {key!r} must be an object of {values.__name__} values")
    return table


def _helper_name(name: object, f: Path, key: str) -> str:
    if not isinstance(name, str) or not HELPER_NAME.fullmatch(name):
        raise CredentialError(f"credentials file '{f}': {key} names no valid helper ({shown(repr(name), limit=80)})")
    return name


def lookup(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``), or None for anonymous access."""
    names = aliases(registry)
    for f in auth_files(environ):
        config = _load(f)
        if config is None:
            continue
        helpers = {host_key(k): v for k, v in _table(config, "credHelpers", f, str).items()}
        for name in names:
            if name in helpers:
                helper = _helper_name(helpers[name], f, "credHelpers")
                return _from_helper(helper, name, f"credential helper docker-credential-{helper}")
        auths = {host_key(k): v for k, v in _table(config, "auths", f, dict).items()}
        for name in names:
            creds = _from_entry(auths.get(name) or {}, f"'{f}'")
            if creds is not None:
                return creds
        if config.get("credsStore"):
            store = _helper_name(config["credsStore"], f, "credsStore")
            for name in names:
                creds = _from_helper(store, name, f"credsStore docker-credential-{store}")
                if creds is not None:
                    return creds
    return None


def _from_entry(entry: Mapping[str, object], source: str) -> Credentials | None:
    try:
        login = entry_login(entry)
    except EntryRefused as e:
        raise CredentialError(f"{e} in {source}") from None
    return None if login is None else Credentials(login[0], Secret(login[1]), source)


def _from_helper(helper: str, registry: str, source: str) -> Credentials | None:
    try:
        found = helper_login(helper, registry, source)
    except HelperFailed as e:
        raise CredentialError(str(e)) from None
    return None if found is None else Credentials(found[0], Secret(found[1]), source)
