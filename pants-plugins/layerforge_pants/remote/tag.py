"""What a tag names at a registry now, for the message that asks for a digest (like a lockfile
update): one distribution-spec GET of the manifest (through a Bearer token when the registry
asks for one), bounded in time and size, with the registry's login from the files `podman
login` and `docker login` write (`auth_files.py`, a copy of python/layerforge/trust/auth_files.py), with
their credential helpers (`credHelpers`, `credsStore`) run as the tool runs them and its certs.d trust
(`certs_d.py`, a copy of python/layerforge/trust/certs_d.py). Best effort: on any failure the message says
why, in one line, instead of showing a digest. Runs inside Pants, which has no layerforge
package to import, when a BUILD file is parsed (`pants list ::` too): it asks nothing the
push would not. Hosts and origins follow the tool's own rules (`hosts.py`, a link to
python/layerforge/trust/hosts.py): plain HTTP for loopback registries only; the token realm
the registry names is asked only on the registry's own origin or over HTTPS elsewhere, never
plain HTTP elsewhere; the login goes to the registry's origin or that realm only, the token to
the registry's origin only, and no redirect is followed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from layerforge_pants.goals.auth_files import (
    EntryRefused,
    HelperFailed,
    aliases,
    auth_files,
    entry_login,
    helper_login,
    host_key,
)
from layerforge_pants.goals.certs_d import CertsRefused, read_file, tls_context
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


def _opener(url: str) -> urllib.request.OpenerDirector:
    """An opener that follows no redirect and trusts what certs.d says for the URL's host."""
    handlers: list = [_NoRedirect]
    if url.startswith("https://"):
        netloc = urllib.parse.urlsplit(url).netloc
        try:
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(netloc)))
        except CertsRefused as e:
            raise ValueError(str(e)) from None
    return urllib.request.build_opener(*handlers)


def _get(url: str, headers: dict, method: str = "GET") -> tuple:
    req = urllib.request.Request(url, headers=headers, method=method)
    try:
        with _opener(url).open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read(_LIMIT + 1)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


def _one_line(text: str) -> str:
    """``text`` as one line of printable characters (what a network error says is input)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:500])


def _reason(error: BaseException) -> str:
    """What a network error says, with the ways to trust a CA when it is an unknown one."""
    reason = getattr(error, "reason", error)
    if getattr(reason, "verify_code", None) in (2, 18, 19, 20, 21):
        return (
            f"{reason}; trust its CA in /etc/containers/certs.d/HOST[:PORT]/ca.crt (or ~/.config/containers/certs.d/, "
            "/etc/docker/certs.d/), the system's CAs or SSL_CERT_FILE"
        )
    return str(reason)


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


def _file_login(path: object, names: set) -> tuple | None:
    """(user, secret) of the first of ``names`` in the auth file ``path``, in the tool's order
    (python/layerforge/registry/credentials.py): its ``credHelpers``, its ``auths``, then its
    ``credsStore``; None if it has none."""
    try:
        data = read_file(path, _LIMIT)  # a regular file, never a FIFO waited on
    except CertsRefused as e:
        if not os.path.lexists(str(path)):
            return None
        raise ValueError(f"logins: {e}") from None
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError(f"cannot read logins from '{path}': it is not JSON") from None
    if not isinstance(config, dict):
        return None
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        by_host = {host_key(k): v for k, v in helpers.items() if isinstance(k, str) and isinstance(v, str)}
        for name in sorted(names & set(by_host)):
            return _helper_login(by_host[name], name, path)
    auths = config.get("auths")
    entries = {}
    if isinstance(auths, dict):
        entries = {host_key(k): v for k, v in auths.items() if isinstance(k, str) and isinstance(v, dict)}
    for name in sorted(names & set(entries)):
        try:
            found = entry_login(entries[name])
        except EntryRefused as e:
            raise ValueError(f"cannot read logins from '{path}': {e}") from None
        if found is not None:
            return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for name in sorted(names):
            found = _helper_login(store, name, path)
            if found is not None:
                return found
    return None


def _helper_login(helper: str, registry: str, path: object) -> tuple | None:
    """(user, secret) from the credential helper named in ``path`` (see auth_files.helper_login)."""
    try:
        return helper_login(helper, registry, f"docker-credential-{helper} (named in '{path}')")
    except HelperFailed as e:
        raise ValueError(str(e)) from None


def login(registry: str) -> tuple[str, str] | None:
    """The Basic ``Authorization`` value of ``registry``'s login and the file it is in, from
    the first auth file holding one (None: anonymous)."""
    for path in auth_files():
        found = _file_login(path, aliases(registry))
        if found is not None:
            return "Basic " + base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode(), str(path)
    return None


def _wants_login(registry: str, detail: str) -> ValueError:
    where = ", ".join(map(str, auth_files()))
    return ValueError(
        f"the registry wants credentials ({detail}; looked in {where}): podman login {registry}, "
        f"or set the digest by hand"
    )


def _token(challenge: str, base: str, repository: str, registry: Origin, *, name: str, basic: tuple | None) -> str:
    """A pull token from the realm of ``challenge``, for the login ``basic`` if any (sent only
    where :func:`_realm` allows)."""
    realm = _realm(challenge, base, registry)
    query = {"scope": f"repository:{repository}:pull"}
    service = dict(_PARAM.findall(challenge)).get("service")
    if service is not None:
        query["service"] = service
    headers = {"Authorization": basic[0]} if basic else {}
    url = realm.text + ("&" if "?" in realm.text else "?") + urllib.parse.urlencode(query)
    status, _, body = _get(url, headers)
    if status != 200 or len(body) > _LIMIT:
        if basic:
            raise ValueError(
                f"the token realm {realm.origin} refuses the login from '{basic[1]}' (HTTP {status}): "
                f"podman login {name}"
            )
        raise _wants_login(name, f"its token realm {realm.origin} answers HTTP {status}")
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
            # the login and the token go to the registry's origin only (`url`; redirects are not
            # followed), the login also to a token realm the push would send it to
            challenge = answer.get("WWW-Authenticate", "") if answer else ""
            basic = login(registry)
            if challenge.lower().startswith("basic"):
                if basic is None:
                    raise _wants_login(registry, "no login was found")
                status, answer, body = _get(url, {**headers, "Authorization": basic[0]})
                if status == 401:
                    raise ValueError(
                        f"the registry refuses the login from '{basic[1]}' (HTTP 401): podman login {registry}"
                    )
            else:
                token = _token(challenge, f"{scheme}://{registry}/", repository, origin, name=registry, basic=basic)
                status, answer, body = _get(url, {**headers, "Authorization": f"Bearer {token}"})
    except (OSError, urllib.error.URLError) as e:
        raise ValueError(_one_line(f"cannot reach {registry}: {_reason(e)}")) from None
    if status != 200:
        raise ValueError(f"the registry answers HTTP {status}")
    if len(body) > _LIMIT:
        raise ValueError("the manifest is larger than 4 MiB")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return digest
