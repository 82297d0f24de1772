"""What a tag names at a registry now, for the message that asks for a digest (like a lockfile
update): one anonymous distribution-spec GET of the manifest (through a Bearer token when the
registry asks for one), bounded in time and size. Best effort: on any failure the message says
why, in one line, instead of showing a digest. Runs inside Pants, which has no layerforge
package to import, when a BUILD file is parsed (`pants list ::` too): it asks nothing the
push would not. Hosts and origins follow the tool's own rules (`hosts.py`, a link to
python/layerforge/trust/hosts.py): plain HTTP for loopback registries only; the token realm
the registry names is asked only on the registry's own origin or over HTTPS elsewhere, never
plain HTTP elsewhere; the token goes to the registry's origin only, no redirect is followed."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request

from layerforge_pants.goals.hosts import (
    MAX_URL,
    Origin,
    Url,
    UrlRefused,
    is_loopback,
    realm_may_receive_login,
    registry_origin,
    split_url,
)

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


def _one_line(text: str) -> str:
    """``text`` as one line of printable characters (what a network error says is input)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:500])


def _realm(challenge: str, base: str, registry: Origin) -> Url:
    """The token realm of a Bearer ``challenge`` (relative to the registry's ``base`` URL), if
    the lookup may ask it; else ``ValueError``."""
    if not challenge.lower().startswith("bearer "):
        raise ValueError("the registry wants credentials")
    value = dict(_PARAM.findall(challenge)).get("realm", "")
    if not value:
        raise ValueError("the registry's Bearer challenge names no token realm")
    try:
        if len(value) > MAX_URL or any(not 0x21 <= ord(c) <= 0x7E for c in value):
            raise UrlRefused("is not a URL layerforge sends requests to")
        realm = split_url(urllib.parse.urljoin(base, value).split("#", 1)[0])
    except ValueError as e:  # UrlRefused, or what urljoin refuses
        raise ValueError(f"the registry's token realm {value[:200]!r} {e or 'is not a valid URL'}") from None
    if not realm_may_receive_login(registry, realm.origin):
        raise ValueError(
            f"the registry's token realm {realm.origin} is another origin over plain HTTP; it is not asked "
            f"(a realm must be HTTPS or {registry})"
        )
    return realm


def _token(challenge: str, base: str, repository: str, registry: Origin) -> str:
    """An anonymous pull token from the realm of ``challenge`` (no credential goes there)."""
    realm = _realm(challenge, base, registry)
    query = {"scope": f"repository:{repository}:pull"}
    service = dict(_PARAM.findall(challenge)).get("service")
    if service is not None:
        query["service"] = service
    status, _, body = _get(realm.text + ("&" if "?" in realm.text else "?") + urllib.parse.urlencode(query), {})
    if status != 200 or len(body) > _LIMIT:
        raise ValueError(f"the registry wants credentials (its token realm {realm.origin} answers HTTP {status})")
    try:
        doc = json.loads(body)
    except ValueError:
        raise ValueError(f"the token realm {realm.origin} answered no JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not re.fullmatch(r"[\x21-\x7e]+", token):
        raise ValueError(f"the token realm {realm.origin} sent no usable token")
    return token


def resolve_digest(registry: str, repository: str, tag: str) -> str:
    """The digest ``registry/repository:tag`` names now; raises ``ValueError`` saying why not."""
    scheme = "http" if is_loopback(registry) else "https"
    try:
        origin = registry_origin(registry, scheme)
    except UrlRefused as e:
        raise ValueError(f"{registry[:200]!r} {e}") from None
    url = f"{scheme}://{registry}/v2/{repository}/manifests/{tag}"
    headers = {"Accept": _ACCEPT}
    try:
        status, answer, body = _get(url, headers)
        if status == 401:
            # the token goes to the registry's origin only (`url`; redirects are not followed)
            challenge = answer.get("WWW-Authenticate", "") if answer else ""
            token = _token(challenge, f"{scheme}://{registry}/", repository, origin)
            status, answer, body = _get(url, {**headers, "Authorization": f"Bearer {token}"})
    except (OSError, urllib.error.URLError) as e:
        raise ValueError(_one_line(f"cannot reach {registry}: {e}")) from None
    if status != 200:
        raise ValueError(f"the registry answers HTTP {status}")
    if len(body) > _LIMIT:
        raise ValueError("the manifest is larger than 4 MiB")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return digest
