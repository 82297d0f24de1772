"""Registry credentials from the places Docker, Podman and skopeo keep them:
``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``, ``$DOCKER_CONFIG/config.json``
(default ``~/.docker/config.json``), including ``credHelpers`` and ``credsStore`` helpers.

Secrets are wrapped in :class:`Secret`, whose ``repr``/``str`` never show the value, so they
cannot end up in logs, exception messages or outputs by accident.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from layerforge.errors import LayerforgeError


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


def auth_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_config = env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    files.append(Path(docker_config) / "config.json")
    return files


def _host_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``index.docker.io``; ``host:5000`` stays."""
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix) :]
    return k.split("/", 1)[0]


def _aliases(registry: str) -> set[str]:
    if registry in ("registry-1.docker.io", "docker.io", "index.docker.io"):
        return {"registry-1.docker.io", "docker.io", "index.docker.io"}
    return {registry}


def lookup(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``), or None for anonymous access."""
    names = _aliases(registry)
    for f in auth_files(environ):
        try:
            config = json.loads(f.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            raise CredentialError(f"cannot read credentials file '{f}': {e}") from None
        helpers = {_host_key(k): v for k, v in (config.get("credHelpers") or {}).items()}
        for name in names:
            if name in helpers:
                return _from_helper(helpers[name], name, f"credential helper docker-credential-{helpers[name]}")
        auths = {_host_key(k): v for k, v in (config.get("auths") or {}).items()}
        for name in names:
            entry = auths.get(name) or {}
            creds = _from_entry(entry, f"'{f}'")
            if creds is not None:
                return creds
        if config.get("credsStore"):
            for name in names:
                creds = _from_helper(config["credsStore"], name, f"credsStore docker-credential-{config['credsStore']}")
                if creds is not None:
                    return creds
    return None


def _from_entry(entry: Mapping[str, str], source: str) -> Credentials | None:
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise CredentialError(f"the 'auth' entry in {source} is not base64 user:password") from None
        return Credentials(user, Secret(password), source)
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], Secret(entry["password"]), source)
    if entry.get("identitytoken"):
        return Credentials("<token>", Secret(entry["identitytoken"]), source)
    return None


def _from_helper(helper: str, registry: str, source: str) -> Credentials | None:
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise CredentialError(f"{source} is configured for {registry} but is not installed")
    proc = subprocess.run([exe, "get"], input=registry, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise CredentialError(f"{source} failed for {registry} (exit {proc.returncode})")
    try:
        data = json.loads(proc.stdout)
        return Credentials(str(data["Username"]), Secret(str(data["Secret"])), source)
    except (ValueError, KeyError):
        raise CredentialError(f"{source} printed an unreadable answer for {registry}") from None
