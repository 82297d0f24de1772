"""Blob and manifest operations of the OCI distribution spec (v1.1).

Credentials and tokens go to the registry's own origin only (:mod:`layerforge.trust.origins`):
an upload ``Location`` or a redirect to another origin is followed without them. A manifest
the registry acknowledges is read back (HEAD) before it counts as pushed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from layerforge.model.digest import sha256_digest
from layerforge.registry import answers
from layerforge.registry.auth import Authenticator, AuthError
from layerforge.registry.credentials import Credentials, no_login
from layerforge.registry.errors import RegistryError
from layerforge.registry.transport import (
    DEFAULT_TIMEOUT,
    ERROR_LIMIT,
    MANIFEST_LIMIT,
    REDIRECT_STATUS,
    Body,
    FileBody,
    Response,
    RetryableError,
    RetryPolicy,
    Sink,
    Transport,
)
from layerforge.trust.blobs import open_regular
from layerforge.trust.origins import Url
from layerforge.trust.text import shown

log = logging.getLogger("layerforge.registry")

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
#: Waits before reading a manifest back again, for registries that show a PUT a moment late.
READ_BACK_WAITS = (0.25, 1.0)


@dataclass(frozen=True)
class ManifestInfo:
    digest: str | None  # None when the registry sent no (valid) Docker-Content-Digest
    media_type: str
    size: int | None


def _codes(resp: Response) -> tuple[str, ...]:
    return answers.error_codes(resp.body)


def _with_query(location: Url, **params: str) -> str:
    extra = "&".join(f"{k}={quote(v, safe=':')}" for k, v in params.items())
    return location.text + ("&" if "?" in location.text else "?") + extra


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        verify: bool = True,
        retry: RetryPolicy | None = None,
        chunk_size: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        pull_only: bool = False,
    ) -> None:
        """``pull_only``: ask tokens for ``pull`` alone (a pull needs no more)."""
        self.registry = registry
        self.actions = "pull" if pull_only else "pull,push"
        self.retry = retry or RetryPolicy()
        self.transport = Transport(registry, insecure=insecure, verify=verify, timeout=timeout)
        self.auth = Authenticator(self.transport, credentials, self.retry)
        self.chunk_size = chunk_size

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        """Stop every request under way (other threads' too) and make no new ones."""
        self.retry.cancel.set()
        self.transport.abort()

    # -- plumbing -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str | Url,
        scopes: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        progress: Callable[[int], None] | None = None,
        limit: int = ERROR_LIMIT,
        sink: Sink | None = None,
        expect: int = 0,
    ) -> Response:
        """One authenticated exchange. The authentication scheme is learned from the first 401
        (callers start with a bodiless request, so no upload body is ever sent in vain).
        Credentials go with it only to the registry's origin; GET and HEAD follow redirects."""
        target = self.transport.url(url)
        origin = self.transport.origin
        own = target.origin == origin
        resp = None
        for attempt in range(2):
            hdrs = {**(headers or {}), **(self.auth.headers(scopes) if own else {})}
            if method in ("GET", "HEAD"):
                resp = self.transport.fetch(method, target, hdrs, owner=origin, limit=limit, sink=sink, expect=expect)
            else:
                resp = self.transport.send(method, target, hdrs, body, progress, limit=limit)
            if resp.status != 401 or attempt == 1 or resp.url.origin != origin:
                break
            self.auth.forget(scopes)
            self.auth.learn(resp)
        assert resp is not None
        path = shown(target.path, limit=200)
        if resp.status in (401, 403) and self.auth.credentials is None and resp.url.origin == origin:
            raise AuthError(no_login(self.registry, f"{method} {path}"), resp.status, _codes(resp))
        if resp.status in (401, 403):
            hint = f"; check the login: podman login {self.registry}" if resp.status == 401 else ""
            where = "" if resp.url.origin == origin else f" (at {resp.url.origin}, sent without credentials)"
            raise AuthError(
                f"{self.registry}: access denied to {method} {path}{where} with {self.auth.who()} "
                f"({f'HTTP {resp.status} ' + ' '.join(_codes(resp))}".rstrip()
                + f"){hint}",
                resp.status,
                _codes(resp),
            )
        if resp.status in REDIRECT_STATUS:
            location = shown(resp.header("Location") or "nowhere", limit=200)
            raise RegistryError(
                f"{self.registry}: {method} {path} was redirected ({resp.status}) to {location}; not followed"
            )
        return resp

    def _call(self, what: str, op: Callable[[], Response]) -> Response:
        return self.retry.run(f"{self.registry}: {what}", op)

    def scopes(self, repo: str, *extra_pull: str) -> list[str]:
        return [f"repository:{repo}:{self.actions}", *(f"repository:{r}:pull" for r in extra_pull)]

    # -- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str, size: int | None = None) -> bool:
        """Whether the repository holds the blob; a registry holding it with another size
        than ``size`` is an error (the layout and the registry disagree about the bytes)."""
        url = f"/v2/{repo}/blobs/{digest}"
        resp = self._call(f"HEAD {url}", lambda: self.request("HEAD", url, self.scopes(repo)))
        if resp.status == 404:
            return False
        if resp.status != 200:
            raise RegistryError(f"{self.registry}: HEAD {url}: HTTP {resp.status}", resp.status, _codes(resp))
        held = answers.decimal(resp.header("Content-Length"))
        if size is not None and held is not None and held != size:
            raise RegistryError(f"{self.registry} holds {digest} with {held} bytes; its descriptor says {size}")
        return True

    def get_blob(self, repo: str, digest: str, size: int, sink: Sink) -> None:
        """Stream blob ``digest`` (``size`` bytes by its descriptor) into ``sink``, which
        checks it (redirects to storage are followed without credentials); every attempt
        calls ``sink`` afresh."""
        url = f"/v2/{repo}/blobs/{digest}"

        def get() -> Response:
            return self.request("GET", url, self.scopes(repo), sink=sink, expect=size)

        resp = self._call(f"GET {url}", get)
        if resp.status != 200:
            raise RegistryError(f"{self.registry}: GET {url}: HTTP {resp.status}", resp.status, _codes(resp))

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False when the registry would rather receive the bytes."""
        url = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={quote(from_repo, safe='/')}"
        scopes = self.scopes(repo, from_repo)
        resp = self._call(f"mount {digest}", lambda: self.request("POST", url, scopes))
        if resp.status == 201:
            return True
        location = resp.header("Location")
        if resp.status == 202 and location:
            with contextlib.suppress(RegistryError):  # abandon the session the registry opened instead
                self.request("DELETE", self.transport.url(location, resp.url, "upload Location"), self.scopes(repo))
        return False

    def upload_blob(
        self, repo: str, digest: str, path: Path, size: int, progress: Callable[[int], None] | None = None
    ) -> None:
        """Upload a blob, monolithically or in chunks. The file must be a regular file of
        exactly ``size`` bytes (checked on the descriptor that is sent). A failed step is
        retried on the same upload session (chunked uploads resume from what the session
        holds); a session the registry no longer knows is restarted from scratch. The
        registry must confirm the digest: a mismatch is an error and is never retried."""
        with open_regular(path, f"blob {digest}", size=size) as fd, os.fdopen(fd, "rb", closefd=False) as f:
            _Upload(self, repo=repo, digest=digest, file=f, size=size, progress=progress or (lambda n: None)).run()

    def _upload_error(self, resp: Response, digest: str) -> RegistryError:
        codes = _codes(resp)
        if "DIGEST_INVALID" in codes:
            return RegistryError(
                f"{self.registry} rejected {digest}: the uploaded bytes do not match it", resp.status, codes
            )
        return RegistryError(
            f"{self.registry}: upload of {digest} failed (HTTP {resp.status} {' '.join(codes)})".rstrip(),
            resp.status,
            codes,
        )

    # -- manifests ------------------------------------------------------------------------

    def head_manifest(self, repo: str, reference: str) -> ManifestInfo | None:
        url = f"/v2/{repo}/manifests/{reference}"
        resp = self._call(
            f"HEAD {url}", lambda: self.request("HEAD", url, self.scopes(repo), headers={"Accept": MANIFEST_ACCEPT})
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryError(f"{self.registry}: HEAD {url}: HTTP {resp.status}", resp.status, _codes(resp))
        return ManifestInfo(
            digest=answers.content_digest(resp.header("Docker-Content-Digest")),
            media_type=(resp.header("Content-Type") or "").split(";")[0],
            size=answers.decimal(resp.header("Content-Length")),
        )

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str] | None:
        url = f"/v2/{repo}/manifests/{reference}"
        resp = self._call(
            f"GET {url}",
            lambda: self.request(
                "GET", url, self.scopes(repo), headers={"Accept": MANIFEST_ACCEPT}, limit=MANIFEST_LIMIT
            ),
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryError(f"{self.registry}: GET {url}: HTTP {resp.status}", resp.status, _codes(resp))
        return resp.body, (resp.header("Content-Type") or "").split(";")[0]

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str, digest: str) -> None:
        """PUT a manifest under ``reference`` (its digest or a tag), then read it back: a
        registry that acknowledges it but does not hold it is an error."""
        url = f"/v2/{repo}/manifests/{reference}"
        resp = self._call(
            f"PUT {url}",
            lambda: self.request("PUT", url, self.scopes(repo), headers={"Content-Type": media_type}, body=data),
        )
        if resp.status not in (200, 201):
            codes = _codes(resp)
            detail = f"HTTP {resp.status} {' '.join(codes)}".rstrip()
            raise RegistryError(
                f"{self.registry}: PUT manifest {repo}:{reference} failed ({detail})", resp.status, codes
            )
        confirmed = resp.header("Docker-Content-Digest")
        if confirmed is not None and confirmed.strip() != digest:
            raise RegistryError(f"{self.registry} stored manifest {digest} as {shown(confirmed)}: digest mismatch")
        self._read_back(repo, reference, digest, len(data))

    def _held(self, repo: str, reference: str) -> ManifestInfo | None:
        info = self.head_manifest(repo, reference)
        if info is not None and info.digest is None:  # no digest header: hash what a GET returns
            got = self.get_manifest(repo, reference)
            return None if got is None else ManifestInfo(sha256_digest(got[0]), got[1], len(got[0]))
        return info

    def _read_back(self, repo: str, reference: str, digest: str, size: int) -> None:
        for wait in (*READ_BACK_WAITS, None):
            info = self._held(repo, reference)
            if info is not None and info.digest == digest and info.size in (None, size):
                return
            if wait is not None:
                self.retry.cancel.wait(wait)
        held = "nothing" if info is None else f"{info.digest} ({info.size} bytes)"
        raise RegistryError(
            f"{self.registry} acknowledged the PUT of manifest {repo}:{reference} ({digest}, {size} bytes) "
            f"but holds {held} there"
        )

    def referrers_supported(self, repo: str, digest: str) -> bool:
        url = f"/v2/{repo}/referrers/{digest}"
        resp = self._call(f"GET {url}", lambda: self.request("GET", url, self.scopes(repo), limit=MANIFEST_LIMIT))
        return resp.status == 200


SESSION_GONE = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})


class _SessionLost(RetryableError):
    pass


class _Upload:
    """One blob upload: session start, body (whole or chunked), final PUT with the digest."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        repo: str,
        digest: str,
        file: BinaryIO,
        size: int,
        progress: Callable[[int], None],
    ) -> None:
        self.client, self.repo, self.digest, self.file, self.size = client, repo, digest, file, size
        self.progress = progress
        self.in_flight = 0  # bytes counted for the request under way
        self.scopes = client.scopes(repo)
        self.location: Url | None = None
        self.offset = 0  # bytes the session holds
        self.what = f"{client.registry}: upload {digest}"

    def run(self) -> None:
        """Steps until the blob is stored. The failure budget is per step that makes the
        session hold more; a registry that keeps losing sessions runs out of attempts or of
        the policy's total time, and one that never takes a chunk counts as failing."""
        failures, start = 0, time.monotonic()
        while True:
            before = self.offset
            try:
                if self._step():
                    return
                if self.offset > before:
                    failures = 0
            except RetryableError as e:
                failures += 1
                self.client.retry.pause(self.what, failures, e, start)
                if isinstance(e, _SessionLost):
                    self._restart()

    def _restart(self) -> None:
        if self._chunked():
            self.progress(-self.offset)  # chunked: what the lost session held was counted
        self.location, self.offset = None, 0

    def _chunked(self) -> bool:
        return self.client.chunk_size is not None and self.size > self.client.chunk_size

    def _location(self, resp: Response) -> Url | None:
        value = resp.header("Location")
        return None if value is None else self.client.transport.url(value, resp.url, "upload Location")

    def _step(self) -> bool:
        """Advance one request; True when the blob is stored."""
        c = self.client
        if self.location is None:
            resp = c.request("POST", f"/v2/{self.repo}/blobs/uploads/", self.scopes)
            location = self._location(resp)
            if resp.status != 202 or location is None:
                raise RegistryError(
                    f"{c.registry}: cannot start an upload to {self.repo} (HTTP {resp.status})", resp.status
                )
            self.location = location
            return False
        octet = {"Content-Type": "application/octet-stream"}
        if self._chunked() and self.offset < self.size:
            return self._patch(octet)
        body = b"" if self._chunked() else FileBody(self.file, 0, self.size)
        url = c.transport.url(_with_query(self.location, digest=self.digest), what="upload Location")
        resp = self._send("PUT", url, headers=octet, body=body)
        if resp.status == 201:
            confirmed = resp.header("Docker-Content-Digest")
            if confirmed is not None and confirmed.strip() != self.digest:
                raise RegistryError(f"{c.registry} stored {self.digest} as {shown(confirmed)}: digest mismatch")
            return True
        if SESSION_GONE & set(_codes(resp)) or resp.status == 404:
            if c.blob_exists(self.repo, self.digest, self.size):  # an earlier PUT landed, its answer was lost
                return True
            raise _SessionLost(f"upload session lost (HTTP {resp.status})", resp.status)
        raise c._upload_error(resp, self.digest)

    def _count(self, n: int) -> None:
        self.in_flight += n
        self.progress(n)

    def _send(self, method: str, url: Url, *, headers: dict[str, str], body: bytes | FileBody) -> Response:
        """One request whose body bytes count as progress, un-counted again if it fails."""
        self.in_flight = 0
        try:
            return self.client.request(method, url, self.scopes, headers=headers, body=body, progress=self._count)
        except RetryableError:
            self.progress(-self.in_flight)
            raise
        finally:
            self.in_flight = 0

    def _held(self, end: int | None, sent_to: int) -> int:
        """Bytes the session holds from its ``Range`` end (at most what was sent)."""
        if end is None:
            return sent_to
        if end + 1 > sent_to:
            raise RegistryError(
                f"{self.client.registry}: the upload session of {self.digest} claims bytes 0-{end}, "
                f"but only {sent_to} were sent"
            )
        return end + 1

    def _patch(self, octet: dict[str, str]) -> bool:
        c = self.client
        assert c.chunk_size is not None and self.location is not None
        length = min(c.chunk_size, self.size - self.offset)
        headers = {**octet, "Content-Range": f"{self.offset}-{self.offset + length - 1}"}
        try:
            body = FileBody(self.file, self.offset, length)
            resp = self._send("PATCH", self.location, headers=headers, body=body)
        except RetryableError:
            self._resync()
            raise
        if resp.status != 202:
            if SESSION_GONE & set(_codes(resp)) or resp.status == 404:
                raise _SessionLost(f"upload session lost (HTTP {resp.status})", resp.status)
            raise c._upload_error(resp, self.digest)
        self.location = self._location(resp) or self.location
        new_offset = self._held(answers.range_end(resp.header("Range")), self.offset + length)
        self.progress(new_offset - (self.offset + length))
        previous, self.offset = self.offset, new_offset
        if new_offset <= previous:
            raise RetryableError(f"the registry took none of the chunk at {previous} (Range 0-{new_offset - 1})")
        return False

    def _resync(self) -> None:
        """After a failed PATCH, learn how much the session holds (bytes sent in the failed
        attempt are un-counted); registries that ignore Content-Range append what arrived."""
        c = self.client
        assert self.location is not None
        sent_before = self.offset
        try:
            status = c.request("GET", self.location, self.scopes)
        except RetryableError:
            return  # try the same chunk again; the next failure resyncs again
        if status.status != 204:
            raise _SessionLost(f"upload session lost (HTTP {status.status})", status.status)
        held = answers.range_end(status.header("Range"))
        if not held:
            # "0-0" means both "empty" and "holds 1 byte" in distribution: start afresh.
            raise _SessionLost("upload session state is ambiguous (Range 0-0 or none)")
        self.offset = self._held(held, self.size)
        self.location = self._location(status) or self.location
        self.progress(self.offset - sent_before)
