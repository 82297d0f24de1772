"""What a tag names at a registry now, for the message that asks for a digest (like a lockfile
update): one anonymous distribution-spec HEAD of the manifest (through a Bearer token when the
registry asks for one), bounded in time and size. Best effort: on any failure the message says
why instead of showing a digest. Runs inside Pants, which has no layerforge package to import."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

TIMEOUT = 10.0
_LIMIT = 4 << 20
_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LOOPBACK = re.compile(r"(?:127\.[0-9.]+|localhost|\[::1\])(?::[0-9]+)?\Z")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a redirected answer is shown as such, never followed with a token


_OPENER = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict, method: str = "GET") -> tuple:
    req = urllib.request.Request(url, headers=headers, method=method)
    try:
        with _OPENER.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read(_LIMIT + 1)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


def _token(challenge: str, repository: str) -> Optional[str]:
    if not challenge.lower().startswith("bearer "):
        return None
    params = dict(_PARAM.findall(challenge))
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        return None
    query = {"scope": f"repository:{repository}:pull"}
    if "service" in params:
        query["service"] = params["service"]
    status, _, body = _get(realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query), {})
    if status != 200 or len(body) > _LIMIT:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    return token if isinstance(token, str) and token.isprintable() else None


def resolve_digest(registry: str, repository: str, tag: str) -> str:
    """The digest ``registry/repository:tag`` names now; raises ``ValueError`` saying why not."""
    scheme = "http" if _LOOPBACK.match(registry) else "https"
    url = f"{scheme}://{registry}/v2/{repository}/manifests/{tag}"
    headers = {"Accept": _ACCEPT}
    try:
        status, answer, body = _get(url, headers)
        if status == 401:
            token = _token(answer.get("WWW-Authenticate", "") if answer else "", repository)
            if token is None:
                raise ValueError("the registry wants credentials")
            status, answer, body = _get(url, {**headers, "Authorization": f"Bearer {token}"})
    except (OSError, urllib.error.URLError) as e:
        raise ValueError(f"cannot reach {registry}: {e}") from None
    if status != 200:
        raise ValueError(f"the registry answers HTTP {status}")
    if len(body) > _LIMIT:
        raise ValueError("the manifest is larger than 4 MiB")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return digest
