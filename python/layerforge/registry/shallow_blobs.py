"""Layer blobs a shallow layout does not hold, made present at the push target from the
repositories its ``index.json`` names (:meth:`~layerforge.layout.oci_layout.OciLayout.shallow_sources`).

On the target's own registry the blob is mounted (``POST .../blobs/uploads/?mount=&from=``):
no byte moves. From another registry it is relayed: fetched with a client of the source
registry (its own credentials, ``pull`` scope only: credentials never cross origins, each
client talks to its registry alone), verified against the digest into a scratch file, then
uploaded with the target's client, which the target confirms by digest again. The sources
come from a layout someone else wrote: each must be a well-formed ``REGISTRY/REPO``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.layout.oci_layout import OciLayout
from layerforge.layout.scratch import scratch_dir
from layerforge.registry.blob_sink import BlobSink
from layerforge.registry.client import RegistryClient
from layerforge.registry.reference import valid_repository
from layerforge.trust.origins import valid_registry
from layerforge.trust.text import shown

#: A client for a source registry (``pull`` only, that registry's credentials).
SourceClients = Callable[[str], RegistryClient]


def parse_sources(layout: OciLayout) -> list[tuple[str, str]]:
    """The layout's shallow sources as (registry, repository); a malformed one is an error."""
    out = []
    for source in layout.shallow_sources():
        registry, _, repo = source.partition("/")
        if not (valid_registry(registry) and valid_repository(repo)):
            raise LayerforgeError(
                f"'{layout.root}': index.json names {shown(repr(source))} as a shallow source, not REGISTRY/REPO"
            )
        out.append((registry, repo))
    return out


class ShallowBlobs:
    """Finds the blobs a shallow layout lacks at its sources, for one push."""

    def __init__(self, layout: OciLayout, clients: SourceClients | None) -> None:
        self.layout = layout
        self.sources = parse_sources(layout)
        self.clients = clients
        self._open: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def lacks(self, digest: str) -> bool:
        return bool(self.sources) and not self.layout.has_blob(digest)

    def _client(self, registry: str) -> RegistryClient:
        with self._lock:
            if registry not in self._open:
                if self.clients is None:
                    raise LayerforgeError(f"no client for the shallow source registry {registry}")
                self._open[registry] = self.clients(registry)
            return self._open[registry]

    def ensure(self, target: RegistryClient, repo: str, digest: str, size: int, progress: Callable[[int], None]) -> str:
        """Mount or relay ``digest`` into ``repo`` of ``target``: "mounted" or "streamed"."""
        for registry, source_repo in self.sources:
            if registry == target.registry and target.mount_blob(repo, digest, source_repo):
                progress(size)
                return "mounted"
        for registry, source_repo in self.sources:
            if registry == target.registry:
                continue
            client = self._client(registry)
            if not client.blob_exists(source_repo, digest, size):
                continue
            self._relay((client, source_repo), (target, repo), digest, size, progress)
            return "streamed"
        where = shown(", ".join(f"{r}/{p}" for r, p in self.sources))
        raise LayerforgeError(
            f"blob {digest}: '{self.layout.root}' is shallow and none of its sources ({where}) gives it"
        )

    @staticmethod
    def _relay(
        src: tuple[RegistryClient, str],
        dest: tuple[RegistryClient, str],
        digest: str,
        size: int,
        progress: Callable[[int], None],
    ) -> None:
        (source, source_repo), (target, repo) = src, dest
        with scratch_dir(Path(tempfile.gettempdir()), "relay") as tmp:
            path = tmp / "blob"
            what = f"{source.registry}/{source_repo}: blob {digest}"
            sink = BlobSink(path, tmp, digest=digest, size=size, what=what, progress=lambda n: None)
            source.get_blob(source_repo, digest, size, sink)
            target.upload_blob(repo, digest, path, size, progress)

    def close(self) -> None:
        for client in self._open.values():
            client.close()

    def abort(self) -> None:
        for client in self._open.values():
            client.abort()
