"""Where registry logins are kept, in containers-auth.json(5) order, and what one entry of
such a file holds: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``
(rootless ``podman login``), ``/run/containers/$UID/auth.json`` (``podman login`` without
``XDG_RUNTIME_DIR``, e.g. root's), ``$XDG_CONFIG_HOME/containers/auth.json`` (default
``~/.config``), then Docker's ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``). The
first file with an entry for the registry gives its login.

Standard library only (Python 3.9 and later): the Pants plugin's digest lookup uses this same
file (shipped byte for byte as ``pants-plugins/layerforge_pants/goals/auth_files.py``;
``tests/test_remote_tag.py`` keeps the two equal: edit this one, then copy it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

DOCKER_HUB = frozenset({"registry-1.docker.io", "docker.io", "index.docker.io"})


class EntryRefused(ValueError):
    """An auth entry that is not one; the message names the key (never a value)."""


class HelperFailed(ValueError):
    """A credential helper that is missing, fails or answers unreadably (never its output)."""


#: A credential helper's name: what follows ``docker-credential-`` (no path, no option).
HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: How long a credential helper may take to answer.
HELPER_TIMEOUT = 60


def auth_files(environ: Mapping[str, str] | None = None, uid: int | None = None) -> list[Path]:
    """The files that may hold logins, in the order they are asked."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path("/run/containers") / str(os.getuid() if uid is None else uid) / "auth.json")
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files.append(Path(config_home) / "containers" / "auth.json")
    files.append(Path(env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")) / "config.json")
    return list(dict.fromkeys(files))


def host_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``index.docker.io``; ``host:5000`` stays."""
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix) :]
    return k.split("/", 1)[0]


def aliases(registry: str) -> set[str]:
    """The names a login for ``registry`` may be kept under."""
    return set(DOCKER_HUB) if registry in DOCKER_HUB else {registry}


def entry_login(entry: Mapping[str, object]) -> tuple[str, str] | None:
    """(user, secret) of an ``auths`` entry (``auth``: base64 ``user:password``; or
    ``username`` and ``password``; or an ``identitytoken``), None when it holds none."""

    def text(key: str) -> str | None:
        value = entry.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise EntryRefused(f"the {key!r} entry is not a string")
        return value

    auth = text("auth")
    if auth:
        try:
            user, _, password = base64.b64decode(auth).decode().partition(":")
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            raise EntryRefused("the 'auth' entry is not base64 user:password") from None
        return user, password
    username, secret = text("username"), text("password")
    if username and secret:
        return username, secret
    token = text("identitytoken")
    if token:
        return "<token>", token
    return None


def helper_login(helper: str, registry: str, source: str) -> tuple[str, str] | None:
    """(user, secret) from ``docker-credential-HELPER get`` (the docker credential helper
    protocol: the registry on stdin, JSON out); None when it has none for ``registry``.
    ``source`` names the helper in messages."""
    exe = shutil.which(f"docker-credential-{helper}") if HELPER_NAME.fullmatch(helper) else None
    if exe is None:
        raise HelperFailed(f"{source} is configured for {registry} but is not installed (or not a helper name)")
    try:
        proc = subprocess.run(
            [exe, "get"], input=registry, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise HelperFailed(f"{source} did not answer for {registry} within {HELPER_TIMEOUT} s") from None
    except (UnicodeDecodeError, OSError):
        raise HelperFailed(f"{source} printed an unreadable answer for {registry}") from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise HelperFailed(f"{source} failed for {registry} (exit {proc.returncode})")
    try:
        data = json.loads(proc.stdout)
    except (ValueError, RecursionError):
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("Username"), str) and isinstance(data.get("Secret"), str)):
        raise HelperFailed(f"{source} printed an unreadable answer for {registry}")
    return data["Username"], data["Secret"]
