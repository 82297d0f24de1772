"""Blob and manifest operations of the OCI distribution spec (v1.1)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from layerforge.registry.auth import Authenticator, AuthError
from layerforge.registry.credentials import Credentials
from layerforge.registry.transport import (
    Body,
    FileBody,
    RegistryError,
    Response,
    RetryableError,
    RetryPolicy,
    Transport,
)

log = logging.getLogger("layerforge.registry")

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


def _codes(resp: Response) -> tuple[str, ...]:
    try:
        return tuple(str(e.get("code")) for e in json.loads(resp.body).get("errors", []))
    except (ValueError, AttributeError):
        return ()


def _range_end(resp: Response) -> int | None:
    """Last byte the upload session holds, from ``Range: 0-N`` (None if absent)."""
    value = (resp.header("Range") or "").split("-")[-1]
    return int(value) if value.isdigit() else None


def _with_query(location: str, **params: str) -> str:
    extra = "&".join(f"{k}={quote(v, safe=':')}" for k, v in params.items())
    return location + ("&" if "?" in location else "?") + extra


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.registry = registry
        self.retry = retry or RetryPolicy()
        self.transport = Transport(registry, insecure=insecure)
        self.auth = Authenticator(self.transport, credentials, self.retry)
        self.chunk_size = chunk_size
        self._pinged = False

    def close(self) -> None:
        self.transport.close()

    # -- plumbing -------------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/``: learn how the registry wants to be authenticated before sending data."""
        if self._pinged:
            return
        resp = self.retry.run(f"{self.registry}: GET /v2/", lambda: self.transport.send("GET", "/v2/"))
        if resp.status == 401:
            self.auth.learn(resp)
        elif resp.status not in (200, 404):
            raise RegistryError(f"{self.registry} does not look like an OCI registry (GET /v2/: {resp.status})")
        self._pinged = True

    def request(
        self,
        method: str,
        url: str,
        scopes: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        progress: Callable[[int], None] | None = None,
    ) -> Response:
        """One authenticated exchange. The authentication scheme is learned from the first 401
        (callers start with a bodiless request, so no upload body is ever sent in vain)."""
        resp = None
        for attempt in range(2):
            hdrs = {**(headers or {}), **self.auth.headers(scopes)}
            resp = self.transport.send(method, url, hdrs, body, progress)
            if resp.status != 401 or attempt == 1:
                break
            self.auth.forget(scopes)
            self.auth.learn(resp)
        assert resp is not None
        if resp.status in (401, 403):
            raise AuthError(
                f"{self.registry}: access denied to {method} {url.split('?', maxsplit=1)[0]} with {self.auth.who()} "
                f"(HTTP {resp.status} {' '.join(_codes(resp))})".rstrip(),
                resp.status,
                _codes(resp),
            )
        return resp

    def _call(self, what: str, op: Callable[[], Response]) -> Response:
        return self.retry.run(f"{self.registry}: {what}", op)

    @staticmethod
    def scopes(repo: str, *extra_pull: str) -> list[str]:
        return [f"repository:{repo}:pull,push", *(f"repository:{r}:pull" for r in extra_pull)]

    # -- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        url = f"/v2/{repo}/blobs/{digest}"
        resp = self._call(f"HEAD {url}", lambda: self.request("HEAD", url, self.scopes(repo)))
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise RegistryError(f"{self.registry}: HEAD {url}: HTTP {resp.status}", resp.status, _codes(resp))

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False when the registry would rather receive the bytes."""
        url = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={from_repo}"
        scopes = self.scopes(repo, from_repo)
        resp = self._call(f"mount {digest}", lambda: self.request("POST", url, scopes))
        if resp.status == 201:
            return True
        if resp.status == 202 and resp.header("Location"):
            location = resp.header("Location") or ""
            with contextlib.suppress(RegistryError):  # abandon the session the registry opened instead
                self.request("DELETE", location, self.scopes(repo))
        return False

    def upload_blob(
        self, repo: str, digest: str, path: Path, size: int, progress: Callable[[int], None] | None = None
    ) -> None:
        """Upload a blob, monolithically or in chunks. A failed step is retried on the same
        upload session (chunked uploads resume from what the session holds); a session the
        registry no longer knows is restarted from scratch. The registry must confirm the
        digest: a mismatch is an error and is never retried."""
        upload = _Upload(self, repo=repo, digest=digest, path=path, size=size, progress=progress or (lambda n: None))
        upload.run()

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
            digest=resp.header("Docker-Content-Digest") or "",
            media_type=(resp.header("Content-Type") or "").split(";")[0],
            size=int(resp.header("Content-Length") or 0),
        )

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str] | None:
        url = f"/v2/{repo}/manifests/{reference}"
        resp = self._call(
            f"GET {url}", lambda: self.request("GET", url, self.scopes(repo), headers={"Accept": MANIFEST_ACCEPT})
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryError(f"{self.registry}: GET {url}: HTTP {resp.status}", resp.status, _codes(resp))
        return resp.body, (resp.header("Content-Type") or "").split(";")[0]

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str, digest: str) -> None:
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
        if confirmed and confirmed != digest:
            raise RegistryError(f"{self.registry} stored manifest {digest} as {confirmed}: digest mismatch")

    def referrers_supported(self, repo: str, digest: str) -> bool:
        url = f"/v2/{repo}/referrers/{digest}"
        resp = self._call(f"GET {url}", lambda: self.request("GET", url, self.scopes(repo)))
        return resp.status == 200


SESSION_GONE = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})


class _SessionLost(RetryableError):
    pass


class _Upload:
    """One blob upload: session start, body (whole or chunked), final PUT with the digest."""

    def __init__(
        self, client: RegistryClient, *, repo: str, digest: str, path: Path, size: int, progress: Callable[[int], None]
    ) -> None:
        self.client, self.repo, self.digest, self.path, self.size = client, repo, digest, path, size
        self.progress = progress
        self.in_flight = 0  # bytes counted for the request under way
        self.scopes = client.scopes(repo)
        self.location: str | None = None
        self.offset = 0  # bytes the session holds
        self.what = f"{client.registry}: upload {digest}"

    def run(self) -> None:
        failures, start = 0, time.monotonic()
        while True:
            try:
                if self._step():
                    return
                failures = 0  # progress made: the budget is per step
            except RetryableError as e:
                failures += 1
                self.client.retry.pause(self.what, failures, e, start)
                if isinstance(e, _SessionLost):
                    self._restart()

    def _restart(self) -> None:
        if self.client.chunk_size is not None and self.size > self.client.chunk_size:
            self.progress(-self.offset)  # chunked: what the lost session held was counted
        self.location, self.offset = None, 0

    def _step(self) -> bool:
        """Advance one request; True when the blob is stored."""
        c = self.client
        if self.location is None:
            resp = c.request("POST", f"/v2/{self.repo}/blobs/uploads/", self.scopes)
            if resp.status != 202 or not resp.header("Location"):
                raise RegistryError(
                    f"{c.registry}: cannot start an upload to {self.repo} (HTTP {resp.status})", resp.status
                )
            self.location = resp.header("Location")
            return False
        octet = {"Content-Type": "application/octet-stream"}
        chunked = c.chunk_size is not None and self.size > c.chunk_size
        if chunked and self.offset < self.size:
            return self._patch(octet)
        body = b"" if chunked else FileBody(self.path, 0, self.size)
        url = _with_query(self.location, digest=self.digest)
        resp = self._send("PUT", url, headers=octet, body=body)
        if resp.status == 201:
            confirmed = resp.header("Docker-Content-Digest")
            if confirmed and confirmed != self.digest:
                raise RegistryError(f"{c.registry} stored {self.digest} as {confirmed}: digest mismatch")
            return True
        if SESSION_GONE & set(_codes(resp)) or resp.status == 404:
            if c.blob_exists(self.repo, self.digest):  # an earlier PUT landed but its answer was lost
                return True
            raise _SessionLost(f"upload session lost (HTTP {resp.status})", resp.status)
        raise c._upload_error(resp, self.digest)

    def _count(self, n: int) -> None:
        self.in_flight += n
        self.progress(n)

    def _send(self, method: str, url: str, *, headers: dict[str, str], body: bytes | FileBody) -> Response:
        """One request whose body bytes count as progress, un-counted again if it fails."""
        self.in_flight = 0
        try:
            return self.client.request(method, url, self.scopes, headers=headers, body=body, progress=self._count)
        except RetryableError:
            self.progress(-self.in_flight)
            raise
        finally:
            self.in_flight = 0

    def _patch(self, octet: dict[str, str]) -> bool:
        c = self.client
        assert c.chunk_size is not None and self.location is not None
        length = min(c.chunk_size, self.size - self.offset)
        headers = {**octet, "Content-Range": f"{self.offset}-{self.offset + length - 1}"}
        try:
            resp = self._send("PATCH", self.location, headers=headers, body=FileBody(self.path, self.offset, length))
        except RetryableError:
            self._resync()
            raise
        if resp.status != 202:
            if SESSION_GONE & set(_codes(resp)) or resp.status == 404:
                raise _SessionLost(f"upload session lost (HTTP {resp.status})", resp.status)
            raise c._upload_error(resp, self.digest)
        self.location = resp.header("Location") or self.location
        held = _range_end(resp)
        new_offset = self.offset + length if held is None else held + 1
        self.progress(new_offset - (self.offset + length))
        self.offset = new_offset
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
        held = _range_end(status)
        if not held:
            # "0-0" means both "empty" and "holds 1 byte" in distribution: start afresh.
            raise _SessionLost("upload session state is ambiguous (Range 0-0)")
        self.location = status.header("Location") or self.location
        self.offset = held + 1
        self.progress(self.offset - sent_before)
