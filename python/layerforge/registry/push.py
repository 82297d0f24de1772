"""Pushing an image (manifest or index, with its referrers) from an OCI layout.

Order of work: every blob of every manifest is made present first (skipped if the registry
has it, mounted from another repository of the registry when one is known, uploaded
otherwise, several at a time); only when all are confirmed are manifests PUT, children
before the index that lists them; then the tags; then artifacts referring to the image
(SBOMs), through the referrers API or, where the registry has none, the ``sha256-<hex>``
tag holding an index of referrers. If anything fails, no manifest of the image is published.

A blob absent from the layout (``pants publish`` gives the push only the blobs the registry
lacks) is fine when the target repository already has it, or mounts it from another of the
registry's repositories: those are asked first, and if one is nowhere the push fails in one
line before anything is uploaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from layerforge.cache_dir import default_cache_dir
from layerforge.errors import LayerforgeError
from layerforge.layout.artifact import referrers
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import digest_hex, sha256_digest
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.registry import answers
from layerforge.registry.byte_meter import ByteMeter
from layerforge.registry.client import ManifestInfo, RegistryClient
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.reference import ImageName, validate_tag
from layerforge.registry.shallow_blobs import ShallowBlobs, SourceClients
from layerforge.registry.transport import MANIFEST_LIMIT
from layerforge.trust.blobs import open_regular, read_document

ProgressFn = Callable[[int, int], object]
BlobFn = Callable[["BlobResult"], object]


@dataclass(frozen=True)
class BlobResult:
    digest: str
    size: int
    action: str  # pushed, skipped, mounted, streamed (a shallow layout's, from another registry)


@dataclass
class PushResult:
    target: ImageName
    digest: str
    tags: dict[str, str] = field(default_factory=dict)  # tag -> pushed | unchanged
    blobs: list[BlobResult] = field(default_factory=list)
    manifests_pushed: int = 0
    referrers: list[str] = field(default_factory=list)
    #: How each referrer is listed: ``None`` by the registry's referrers API, else the tag of
    #: the referrers index (``sha256-<hex>``) and that index's digest as pushed or found.
    listings: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    #: Every blob of the image and its referrers the layout holds, with its size (the
    #: receipt's blob set), and the image's own blobs (what a re-push reports as skipped).
    blob_set: dict[str, int] = field(default_factory=dict)
    image_blobs: dict[str, int] = field(default_factory=dict)
    #: The manifests, indexes and artifacts the push read from the layout (checked by digest).
    documents: list[str] = field(default_factory=list)
    #: The image's manifests and indexes, the image itself first (what ``--sign-key`` signs).
    manifests: list[Descriptor] = field(default_factory=list)
    #: Cosign signature and attestation objects the layout holds for the image: the caller
    #: merges them into the registry's (:mod:`layerforge.signing.push_signing`).
    cosign_objects: list[Descriptor] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for b in self.blobs if b.action == action)

    def bytes(self, action: str) -> int:
        return sum(b.size for b in self.blobs if b.action == action)


#: Indexes nest at most this deep (an index of indexes of manifests is depth 2).
MAX_DEPTH = 8


def read_manifest_blob(layout: OciLayout, desc: Descriptor) -> bytes:
    """A manifest or index from the layout: a regular file of the descriptor's size, at most
    what registries accept, whose bytes match its digest."""
    what = f"manifest {desc.digest}"
    if desc.size > MANIFEST_LIMIT:
        raise LayerforgeError(f"{what} is {desc.size} bytes; registries accept at most {MANIFEST_LIMIT >> 20} MiB")
    data = read_document(layout.blob_path(desc.digest), what, size=desc.size, limit=MANIFEST_LIMIT)
    if sha256_digest(data) != desc.digest:
        raise LayerforgeError(f"'{layout.root}': blob {desc.digest} does not match its digest (corrupt layout)")
    return data


def _document(data: bytes, desc: Descriptor) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise LayerforgeError(f"manifest {desc.digest} is not valid JSON") from None


def check_blob_file(layout: OciLayout, digest: str, size: int) -> None:
    """The blob is a regular file of exactly its descriptor's size (before anything is sent)."""
    with open_regular(layout.blob_path(digest), f"blob {digest}", size=size):
        pass


def absent_from(layout: OciLayout, digest: str) -> bool:
    """Nothing at all is at the blob's path (anything there is checked as a blob)."""
    try:
        os.lstat(layout.blob_path(digest))
    except FileNotFoundError:
        return True
    return False


def absent_blob_error(layout: OciLayout, client: RegistryClient, repo: str, digest: str) -> LayerforgeError:
    return LayerforgeError(
        f"blob {digest} is not in '{layout.root}' and {client.registry}/{repo} does not have it: "
        "push from a layout that holds the blob"
    )


@dataclass
class _Graph:
    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)  # children first
    blobs: dict[str, int] = field(default_factory=dict)
    #: Blobs absent from a layout that is not shallow (or a shallow one's configs): the
    #: target must already have them (see :func:`_ensure_blobs`).
    absent: set[str] = field(default_factory=set)

    def add_manifest(
        self, layout: OciLayout, desc: Descriptor, depth: int = 0, shallow: ShallowBlobs | None = None
    ) -> None:
        if any(d.digest == desc.digest for d, _ in self.manifests):
            return
        if depth > MAX_DEPTH:
            raise LayerforgeError(f"index {desc.digest}: indexes nest deeper than {MAX_DEPTH} levels")
        data = read_manifest_blob(layout, desc)
        if desc.media_type in media_types.INDEX_TYPES:
            for child in Index.from_json(_document(data, desc), f"index {desc.digest}").manifests:
                self.add_manifest(layout, child, depth + 1, shallow)
        else:
            manifest = Manifest.from_json(_document(data, desc))
            for blob in (manifest.config, *manifest.layers):
                known = self.blobs.setdefault(blob.digest, blob.size)
                if known != blob.size:
                    raise LayerforgeError(f"blob {blob.digest} is listed with sizes {known} and {blob.size}")
                if blob is not manifest.config and shallow is not None and shallow.lacks(blob.digest):
                    continue
                if absent_from(layout, blob.digest):
                    self.absent.add(blob.digest)
                else:
                    check_blob_file(layout, blob.digest, blob.size)
        self.manifests.append((desc, data))


def push_image(
    layout: OciLayout,
    ref: str | None,
    target: ImageName,
    client: RegistryClient,
    *,
    extra_tags: tuple[str, ...] = (),
    jobs: int = 4,
    known: KnownBlobs | None = None,
    progress: ProgressFn | None = None,
    on_blob: BlobFn | None = None,
    sources: SourceClients | None = None,
) -> PushResult:
    """Push ``ref`` of ``layout``. Layer blobs a shallow layout lacks are mounted from, or
    relayed from, the repositories it names (:mod:`layerforge.registry.shallow_blobs`;
    ``sources`` makes the clients of other registries)."""
    entry = layout.resolve(ref)
    root = Descriptor(media_type=entry.media_type, digest=entry.digest, size=entry.size)
    if target.digest and target.digest != root.digest:
        raise LayerforgeError(f"{target}: the layout's image is {root.digest}, not {target.digest}")
    tags = _tags_of(target, extra_tags)
    known = known or KnownBlobs(None)
    repo = target.repository
    result = PushResult(target=target, digest=root.digest)

    shallow = ShallowBlobs(layout, sources)
    graph = _Graph()
    graph.add_manifest(layout, root, shallow=shallow)
    artifacts = [a for d, _ in graph.manifests for a, _ in referrers(layout, d.digest)]
    result.image_blobs = dict(graph.blobs)
    result.documents = [d.digest for d, _ in graph.manifests]
    result.manifests = [Descriptor(d.media_type, d.digest, d.size) for d, _ in reversed(graph.manifests)]
    result.documents += [e.digest for e in layout.read_index().manifests if e.artifact_type]
    result.blob_set.update({d: s for d, s in graph.blobs.items() if not shallow.lacks(d) and d not in graph.absent})
    result.blob_set.update({d.digest: d.size for d, _ in graph.manifests})

    current = {tag: client.head_manifest(repo, tag) for tag in tags}
    if tags and all(info is not None and info.digest == root.digest for info in current.values()):
        # Every tag already names this image: the registry holds all it references.
        present = True
    else:
        present = client.head_manifest(repo, root.digest) is not None
    if not present:
        try:
            result.blobs = _ensure_blobs(
                layout,
                client,
                repo,
                blobs=graph.blobs,
                jobs=jobs,
                known=known,
                progress=progress,
                on_blob=on_blob,
                shallow=shallow,
                absent=graph.absent,
            )
        finally:
            shallow.close()
        for desc, data in graph.manifests[:-1]:
            client.put_manifest(repo, desc.digest, data, desc.media_type, desc.digest)
            result.manifests_pushed += 1
        if target.digest and not tags:
            client.put_manifest(repo, root.digest, graph.manifests[-1][1], root.media_type, root.digest)
            result.manifests_pushed += 1
    else:
        result.blobs = _skipped(graph.blobs, on_blob, progress)
    _put_tags(client, repo, current, root=root, root_bytes=graph.manifests[-1][1], result=result)

    for artifact in artifacts:
        if artifact.artifact_type in media_types.COSIGN_ARTIFACT_TYPES:
            result.cosign_objects.append(artifact)  # merged into the registry's by the signing code
            continue
        _push_referrer(layout, client, repo, artifact=artifact, jobs=jobs, known=known, result=result, on_blob=on_blob)
    _settle_listings(result)
    for b in result.blobs:
        record = known.note if b.action == "skipped" else known.add
        record(client.registry, repo, b.digest)
    known.save()
    return result


def _tags_of(target: ImageName, extra_tags: tuple[str, ...]) -> list[str]:
    """The tags a push sets: the target's, then ``extra_tags``, once each; ``latest`` when
    neither a tag nor a digest is given."""
    tags = list(dict.fromkeys([*([target.tag] if target.tag else []), *(validate_tag(t) for t in extra_tags)]))
    return tags if tags or target.digest else ["latest"]


def _skipped(blobs: dict[str, int], on_blob: BlobFn | None, progress: ProgressFn | None) -> list[BlobResult]:
    """Every blob of ``blobs`` as skipped (the registry holds the image), reported as a push
    that sent them would report them."""
    results = [BlobResult(d, s, "skipped") for d, s in sorted(blobs.items())]
    if on_blob is not None:
        for b in results:
            on_blob(b)
    if progress is not None:
        progress(sum(blobs.values()), sum(blobs.values()))
    return results


def _put_tags(
    client: RegistryClient,
    repo: str,
    current: dict[str, ManifestInfo | None],
    *,
    root: Descriptor,
    root_bytes: bytes,
    result: PushResult,
) -> None:
    """Point each tag of ``current`` (the tags and what they named before) at ``root``,
    leaving the ones that already do."""
    for tag, info in current.items():
        if info is not None and info.digest == root.digest:
            result.tags[tag] = "unchanged"
            continue
        client.put_manifest(repo, tag, root_bytes, root.media_type, root.digest)
        result.manifests_pushed += 1
        result.tags[tag] = "pushed"


def _ensure_blobs(
    layout: OciLayout,
    client: RegistryClient,
    repo: str,
    *,
    blobs: dict[str, int],
    jobs: int,
    known: KnownBlobs,
    progress: ProgressFn | None,
    on_blob: BlobFn | None = None,
    shallow: ShallowBlobs | None = None,
    absent: Set[str] = frozenset(),
) -> list[BlobResult]:
    """Make every blob of ``blobs`` present in ``repo``; those ``absent`` from the layout
    first, none of which is uploaded (the target has it, or it is mounted or, from a shallow
    layout's sources, relayed), so that one found nowhere fails the push before any upload."""
    meter = ByteMeter(progress, sum(blobs.values()))

    def ensure(item: tuple[str, int]) -> BlobResult:
        result = _ensure(item)
        if on_blob is not None:
            with meter.lock:
                on_blob(result)
        return result

    def _ensure(item: tuple[str, int]) -> BlobResult:
        digest, size = item
        if client.blob_exists(repo, digest, size):
            meter(size)
            return BlobResult(digest, size, "skipped")
        if shallow is not None and shallow.lacks(digest):
            return BlobResult(digest, size, shallow.ensure(client, repo, digest, size, meter))
        source = known.find(client.registry, digest, exclude=repo)
        if source is not None and client.mount_blob(repo, digest, source):
            meter(size)
            return BlobResult(digest, size, "mounted")
        if digest in absent:
            raise absent_blob_error(layout, client, repo, digest)
        client.upload_blob(repo, digest, layout.blob_path(digest), size, meter)
        return BlobResult(digest, size, "pushed")

    items = sorted(blobs.items(), key=lambda kv: (-kv[1], kv[0]))  # biggest first keeps all workers busy
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="layerforge-push") as pool:
        try:
            done = list(pool.map(ensure, [i for i in items if i[0] in absent]))
            done += pool.map(ensure, [i for i in items if i[0] not in absent])
            return sorted(done, key=lambda b: b.digest)
        except BaseException:
            # A failed blob, Ctrl-C or SIGTERM: stop the other workers' requests now rather
            # than wait for them (their sockets are shut down, their retries cancelled).
            client.abort()
            if shallow is not None:
                shallow.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _push_referrer(
    layout: OciLayout,
    client: RegistryClient,
    repo: str,
    *,
    artifact: Descriptor,
    jobs: int,
    known: KnownBlobs,
    result: PushResult,
    on_blob: BlobFn | None = None,
) -> None:
    artifact_bytes = read_manifest_blob(layout, artifact)
    manifest = Manifest.from_json(_document(artifact_bytes, artifact))
    assert manifest.subject is not None
    blobs = (manifest.config, *manifest.layers)
    result.blob_set.update({b.digest: b.size for b in blobs if not absent_from(layout, b.digest)})
    result.blob_set[artifact.digest] = artifact.size
    result.listings[artifact.digest] = None
    if client.head_manifest(repo, artifact.digest) is None:
        graph = _Graph()
        graph.add_manifest(layout, Descriptor(artifact.media_type, artifact.digest, artifact.size))
        result.blobs += _ensure_blobs(
            layout,
            client,
            repo,
            blobs=graph.blobs,
            jobs=jobs,
            known=known,
            progress=None,
            on_blob=on_blob,
            absent=graph.absent,
        )
        client.put_manifest(repo, artifact.digest, artifact_bytes, artifact.media_type, artifact.digest)
        result.manifests_pushed += 1
    result.referrers.append(artifact.digest)
    if client.referrers_supported(repo, manifest.subject.digest):
        return
    # Referrers tag schema (distribution-spec v1.1): an index tagged sha256-<hex> of the subject.
    tag = f"sha256-{digest_hex(manifest.subject.digest)}"
    entry = Descriptor(
        media_type=artifact.media_type,
        digest=artifact.digest,
        size=artifact.size,
        artifact_type=manifest.artifact_type,
        annotations=dict(manifest.annotations),
    )
    existing = client.get_manifest(repo, tag)
    index = Index() if existing is None else _registry_index(existing[0], f"{client.registry}/{repo}:{tag}")
    if existing is not None and any(m.digest == artifact.digest for m in index.manifests):
        result.listings[artifact.digest] = (tag, sha256_digest(existing[0]))
        return
    updated = Index(manifests=(*index.manifests, entry), annotations=index.annotations)
    data = canonical_json(updated.to_json())
    client.put_manifest(repo, tag, data, media_types.IMAGE_INDEX, sha256_digest(data))
    result.manifests_pushed += 1
    result.listings[artifact.digest] = (tag, sha256_digest(data))


def _settle_listings(result: PushResult) -> None:
    """Each referrer's listing names the referrers index its tag holds once every referrer is
    pushed: the last one written to that tag (an artifact pushed after another adds its entry
    to the index the earlier one was listed in, which the receipt must not name any more)."""
    final = {listing[0]: listing[1] for listing in result.listings.values() if listing is not None}
    result.listings = {
        digest: None if listing is None else (listing[0], final[listing[0]])
        for digest, listing in result.listings.items()
    }


def _registry_index(data: bytes, where: str) -> Index:
    """The referrers index a registry holds under the tag schema, read as hostile input."""
    doc = answers.json_body(data, f"{where} (the referrers index)")
    try:
        return Index.from_json(doc, f"{where} (the referrers index)")
    except (TypeError, ValueError, AttributeError, KeyError):  # shapes the model does not name yet
        raise LayerforgeError(f"{where} (the referrers index) is not a well-formed image index") from None


def default_known_blobs_path() -> Path:
    return default_cache_dir() / "registry-blobs.json"
