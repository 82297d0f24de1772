"""Pulling an image (manifest or index) from a registry into an OCI layout.

Everything the registry sends is hostile until checked: a manifest's bytes must hash to the
digest asked for (a tag's answer is named by the digest of its bytes), its media type must be
a manifest or index type and agree with the ``Content-Type``, a child manifest must be the
size and type its index entry says, configs and layers must have known media types, and
every blob is verified while it streams in (:mod:`layerforge.registry.blob_sink`). Manifest
and index bytes are stored exactly as the registry holds them, so their digests are the
registry's. Blobs the layout already holds are read through and skipped when they match.

Platforms: an image manifest is pulled as it is. An index is pulled whole with
``all_platforms``; with one platform (the host's by default), only that platform's manifest
is pulled and tagged; with several, their manifests are pulled and tagged through an index
listing exactly their entries (a new index, unless it is all of the registry's). An image
an index entry lists as a platform (the entries chosen, and every entry of the indexes pulled,
``all_platforms`` or not) must be that platform by its config too.

Bounds: each manifest digest is fetched once however often indexes list it, indexes nest at
most :data:`MAX_DEPTH` deep on every path, and one pull holds at most
:data:`MAX_PULL_MANIFESTS` manifests and indexes of at most :data:`MAX_PULL_MANIFEST_BYTES`
bytes in all (they stay in memory until every blob is in).
"""

from __future__ import annotations

import platform as host
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from layerforge.errors import LayerforgeError, UsageError
from layerforge.layout.atomic import atomic_write
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.canonical_json import canonical_json
from layerforge.model.descriptor import Descriptor
from layerforge.model.digest import sha256_digest
from layerforge.model.index import Index
from layerforge.model.manifest import Manifest
from layerforge.model.platform import Platform, PlatformMismatch, listed_platform, platform_matches
from layerforge.progress import ProgressCallback
from layerforge.registry.blob_sink import BlobRefused, BlobSink
from layerforge.registry.byte_meter import ByteMeter
from layerforge.registry.client import RegistryClient
from layerforge.registry.reference import ImageName
from layerforge.trust.blobs import check_blob
from layerforge.trust.json_shape import ShapeError, load_json
from layerforge.trust.text import shown

CONFIG_TYPES = frozenset({media_types.IMAGE_CONFIG, media_types.DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {media_types.LAYER_TAR, media_types.LAYER_TAR_GZIP, media_types.LAYER_TAR_ZSTD, media_types.DOCKER_LAYER_GZIP}
)
#: Configs are read whole by whatever uses the image: at most this large.
MAX_CONFIG = 16 << 20
#: Indexes nest at most this deep (an index of indexes of manifests is 2).
MAX_DEPTH = 8
#: One pull takes at most this many distinct manifests and indexes (the root included)...
MAX_PULL_MANIFESTS = 1024
#: ...and at most this many bytes of them (each is at most ``MANIFEST_LIMIT``).
MAX_PULL_MANIFEST_BYTES = 32 << 20
_PLATFORM = re.compile(r"[a-z0-9]{1,32}/[a-z0-9_]{1,32}(?:/[a-z0-9]{1,16})?")
_HOST_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def parse_platform(value: str, option: str = "--platform") -> str:
    """``OS/ARCH[/VARIANT]`` (``linux/amd64``, ``linux/arm64/v8``)."""
    if not _PLATFORM.fullmatch(value):
        raise UsageError(option, f"{shown(repr(value))} is not OS/ARCH[/VARIANT] (e.g. linux/amd64)")
    return value


def host_platform() -> str:
    return f"linux/{_HOST_ARCH.get(host.machine(), host.machine().lower())}"


@dataclass
class PullResult:
    name: ImageName
    resolved: str  # digest the reference names at the registry
    descriptor: Descriptor  # what the layout's tag names
    tag: str
    fetched: dict[str, int] = field(default_factory=dict)  # digest -> size
    present: dict[str, int] = field(default_factory=dict)


@dataclass
class _Plan:
    manifests: dict[str, tuple[Descriptor, bytes]] = field(default_factory=dict)  # by digest, children first
    heights: dict[str, int] = field(default_factory=dict)  # digest -> how deep indexes nest below it
    blobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # digest -> (size, media type)
    layers: set[str] = field(default_factory=set)  # the digests in blobs that are layers
    listed: list[tuple[Descriptor, str]] = field(default_factory=list)  # (entry with a platform, its index)


class Puller:
    def __init__(self, client: RegistryClient, name: ImageName) -> None:
        self.client, self.name = client, name
        self.repo = name.repository
        self.where = f"{name.registry}/{name.repository}"
        self.listed: set[str] = set()  # the manifest digests of this pull, fetched or to fetch
        self.held = 0  # bytes of the manifests fetched

    def count(self, digests: Iterable[str], what: str) -> None:
        """Add ``digests`` (listed by ``what``) to the pull's manifests, within its bound."""
        self.listed.update(digests)
        if len(self.listed) > MAX_PULL_MANIFESTS:
            raise BlobRefused(
                f"{what} brings the pull to more than {MAX_PULL_MANIFESTS} manifests and indexes "
                "(MAX_PULL_MANIFESTS); refused (an index that large: pull only the --platform you need)"
            )

    def manifest(self, reference: str, expected: Descriptor | None = None) -> tuple[Descriptor, bytes]:
        """The manifest or index ``reference`` names, checked (see the module's rules)."""
        got = self.client.get_manifest(self.repo, reference)
        sep = "@" if reference.startswith("sha256:") else ":"
        what = f"{self.where}{sep}{reference}"
        if got is None:
            raise LayerforgeError(f"{what}: the registry has no such manifest")
        data, content_type = got
        digest = sha256_digest(data)
        if sep == "@" and digest != reference:
            raise BlobRefused(f"{what}: the registry sent a manifest whose digest is {digest}; refused")
        self.count((digest,), what)
        self.held += len(data)
        if self.held > MAX_PULL_MANIFEST_BYTES:
            raise BlobRefused(
                f"{what} brings the pull to more than {MAX_PULL_MANIFEST_BYTES} bytes of manifests and indexes "
                "(MAX_PULL_MANIFEST_BYTES); refused"
            )
        doc = load_json(data, f"{what} (manifest)")
        declared = doc.get("mediaType") if isinstance(doc, dict) else None
        media_type = declared if isinstance(declared, str) else content_type
        if media_type not in media_types.MANIFEST_TYPES | media_types.INDEX_TYPES:
            raise BlobRefused(f"{what}: media type {shown(repr(media_type))} is not an image manifest or index")
        if content_type in media_types.MANIFEST_TYPES | media_types.INDEX_TYPES and content_type != media_type:
            raise BlobRefused(
                f"{what}: served as {shown(repr(content_type))} but its mediaType is {shown(repr(media_type))}"
            )
        got_desc = Descriptor(media_type=media_type, digest=digest, size=len(data))
        if expected is not None:
            _as_listed(what, got_desc, expected)
        return got_desc, data

    def add(self, entry: Descriptor, plan: _Plan, depth: int) -> None:
        """Add what index entry ``entry`` names, ``depth`` below the root, to ``plan``: fetched
        the first time its digest comes up, checked against what was fetched after that."""
        known = plan.manifests.get(entry.digest)
        if known is None:
            self.plan(*self.manifest(entry.digest, entry), plan, depth)
            return
        what = f"{self.where}@{entry.digest}"
        _as_listed(what, known[0], entry)
        if depth + plan.heights[entry.digest] > MAX_DEPTH:
            raise BlobRefused(f"{what}: indexes nest deeper than {MAX_DEPTH} levels")

    def plan(self, desc: Descriptor, data: bytes, plan: _Plan, depth: int = 0) -> None:
        """Add ``desc`` (already fetched as ``data``, ``depth`` below the root) and everything
        below it to ``plan``; each digest below is fetched once (hashes make cycles impossible)."""
        what = f"{self.where}@{desc.digest}"
        if depth > MAX_DEPTH:
            raise BlobRefused(f"{what}: indexes nest deeper than {MAX_DEPTH} levels")
        doc = load_json(data, what)
        height = 0
        try:
            if desc.media_type in media_types.INDEX_TYPES:
                children = Index.from_json(doc, what).manifests
                self.count((child.digest for child in children), what)
                plan.listed += [(child, what) for child in children if child.platform is not None]
                for child in children:
                    self.add(child, plan, depth + 1)
                    height = max(height, 1 + plan.heights[child.digest])
            else:
                self._plan_image(Manifest.from_json(doc, what), what, plan)
        except ShapeError as e:
            raise BlobRefused(str(e)) from None
        plan.manifests[desc.digest] = (desc, data)
        plan.heights[desc.digest] = height

    def _plan_image(self, manifest: Manifest, what: str, plan: _Plan) -> None:
        if manifest.config.media_type not in CONFIG_TYPES:
            raise BlobRefused(f"{what}: config media type {shown(repr(manifest.config.media_type))} is not an image's")
        if manifest.config.size > MAX_CONFIG:
            raise BlobRefused(f"{what}: config of {manifest.config.size} bytes (at most {MAX_CONFIG} accepted)")
        for blob in (manifest.config, *manifest.layers):
            if blob is not manifest.config and blob.media_type not in LAYER_TYPES:
                raise BlobRefused(
                    f"{what}: layer {blob.digest} has media type {shown(repr(blob.media_type))} "
                    "(accepted: tar, tar+gzip, tar+zstd)"
                )
            if blob is not manifest.config:
                plan.layers.add(blob.digest)
            known = plan.blobs.setdefault(blob.digest, (blob.size, blob.media_type))
            if known[0] != blob.size:
                raise BlobRefused(f"{what}: blob {blob.digest} is listed with sizes {known[0]} and {blob.size}")


def _as_listed(what: str, got: Descriptor, entry: Descriptor) -> None:
    """A manifest must be the size and media type its index entry says."""
    if entry.size != got.size or entry.media_type != got.media_type:
        raise BlobRefused(
            f"{what}: {got.size} bytes of {shown(repr(got.media_type))}; its index entry says {entry.size} "
            f"bytes of {shown(repr(entry.media_type))}"
        )


def _select(
    puller: Puller, root: Descriptor, data: bytes, platforms: Sequence[str], all_platforms: bool
) -> tuple[Descriptor, bytes | None, list[Descriptor]]:
    """The descriptor to tag (and, for a new index, its bytes), and the index entries chosen
    for their platform (none for an image manifest or the whole index)."""
    if root.media_type in media_types.MANIFEST_TYPES or all_platforms:
        return root, data, []
    what = f"{puller.where}@{root.digest}"
    try:
        entries = Index.from_json(load_json(data, what), what).manifests
    except ShapeError as e:
        raise BlobRefused(str(e)) from None
    wanted = list(platforms) or [host_platform()]
    chosen: list[Descriptor] = []
    for p in wanted:
        match = next(
            (m for m in entries if m.media_type in media_types.MANIFEST_TYPES and platform_matches(m.platform, p)),
            None,
        )
        if match is None:
            offered = ", ".join(str(m.platform) for m in entries if m.platform is not None) or "none"
            raise UsageError("--platform", f"{what} has no image for {shown(p)} (it has: {shown(offered)})")
        if match not in chosen:
            chosen.append(match)
    if len(chosen) == 1:
        return chosen[0], None, chosen
    if len(chosen) == len(entries):
        return root, data, chosen
    sub = canonical_json(Index(manifests=tuple(chosen)).to_json())
    return Descriptor(media_types.IMAGE_INDEX, sha256_digest(sub), len(sub)), sub, chosen


def pull_image(
    client: RegistryClient,
    name: ImageName,
    layout: OciLayout,
    *,
    tag: str,
    platforms: Sequence[str] = (),
    all_platforms: bool = False,
    shallow: bool = False,
    jobs: int = 4,
    progress: ProgressCallback | None = None,
    on_blob: Callable[[str, int, str], object] | None = None,
) -> PullResult:
    """Pull ``name`` into ``layout`` (opened for writing and locked by the caller) and tag it
    ``tag``. Blobs come first; manifests, then ``index.json``, only once all are in. With
    ``shallow``, layer blobs are left in the registry (their descriptors are in the manifests)
    and ``index.json`` says so (:meth:`~layerforge.layout.oci_layout.OciLayout.mark_shallow`)."""
    puller = Puller(client, name)
    root, data = puller.manifest(name.digest or name.tag or "latest")
    chosen, new_index, picked = _select(puller, root, data, platforms, all_platforms)
    plan = _Plan()
    if chosen.digest == root.digest:
        puller.plan(root, data, plan)
    else:
        for entry in picked:
            puller.add(entry, plan, 1)
    result = PullResult(name=name, resolved=root.digest, descriptor=chosen, tag=tag)
    if shallow:
        plan.blobs = {d: v for d, v in plan.blobs.items() if d not in plan.layers}
    _fetch_blobs(puller, layout, plan, result, jobs=jobs, progress=progress, on_blob=on_blob)
    _check_listed(layout, plan, [(entry, f"{puller.where}@{root.digest}") for entry in picked])
    if chosen.media_type in media_types.MANIFEST_TYPES and platforms:
        _check_platform(layout, chosen, plan.manifests[chosen.digest][1], platforms, f"{puller.where}@{chosen.digest}")
    for desc, body in plan.manifests.values():
        _store(layout, desc.digest, body)
    if new_index is not None and chosen.digest != root.digest:
        _store(layout, chosen.digest, new_index)
    if shallow:
        layout.mark_shallow((f"{name.registry}/{name.repository}",))
    layout.tag(_entry(chosen), tag)
    return result


def _check_listed(layout: OciLayout, plan: _Plan, picked: list[tuple[Descriptor, str]]) -> None:
    """An image an index entry lists as a platform must be that platform by its config
    (fetched into ``layout``) too: the entries ``picked`` from the root (with the root) and
    every entry of the indexes in ``plan``; each manifest's config is read once."""
    configs: dict[str, Platform] = {}
    seen: set[tuple[str, Platform | None]] = set()
    for entry, where in [*picked, *plan.listed]:
        if entry.media_type not in media_types.MANIFEST_TYPES or (entry.digest, entry.platform) in seen:
            continue
        seen.add((entry.digest, entry.platform))
        config = configs.get(entry.digest)
        if config is None:
            what = f"{where}: {entry.digest}"
            manifest = Manifest.from_json(load_json(plan.manifests[entry.digest][1], what), what)
            config = configs[entry.digest] = layout.read_config(manifest).platform
        try:
            listed_platform(entry.platform, config, entry.digest, where)
        except PlatformMismatch as e:
            raise BlobRefused(f"{e}; refused") from None


def _check_platform(layout: OciLayout, desc: Descriptor, body: bytes, platforms: Sequence[str], what: str) -> None:
    """A single image asked for by platform must be that platform (its config says which)."""
    actual = desc.platform or layout.read_config(Manifest.from_json(load_json(body, what), what)).platform
    if not any(platform_matches(actual, p) for p in platforms):
        raise UsageError("--platform", f"{what} is {shown(actual)}, not {shown(', '.join(platforms))}")


def _entry(desc: Descriptor) -> Descriptor:
    """The index.json entry: media type, digest, size and platform of the registry's entry."""
    return Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size, platform=desc.platform)


def _store(layout: OciLayout, digest: str, data: bytes) -> None:
    """A manifest's exact bytes (checked against ``digest`` by the caller) under its digest."""
    atomic_write(layout.blob_path(digest), data, layout.tmp_dir)


def _fetch_blobs(
    puller: Puller,
    layout: OciLayout,
    plan: _Plan,
    result: PullResult,
    *,
    jobs: int,
    progress: ProgressCallback | None,
    on_blob: Callable[[str, int, str], object] | None,
) -> None:
    meter = ByteMeter(progress, sum(size for size, _ in plan.blobs.values()))

    def one(item: tuple[str, tuple[int, str]]) -> tuple[str, int, str]:
        digest, (size, _) = item
        path = layout.blob_path(digest)
        if path.is_file():
            try:
                check_blob(path, digest, size, f"blob {digest}")
                meter(size)
                return digest, size, "present"
            except LayerforgeError:
                pass  # a damaged or foreign file: fetched again and replaced
        sink = BlobSink(
            path, layout.tmp_dir, digest=digest, size=size, what=f"{puller.where}: blob {digest}", progress=meter
        )
        puller.client.get_blob(puller.repo, digest, size, sink)
        return digest, size, "fetched"

    def done(item: tuple[str, tuple[int, str]]) -> tuple[str, int, str]:
        out = one(item)
        if on_blob is not None:
            with meter.lock:
                on_blob(*out)
        return out

    layout.blob_dir.mkdir(parents=True, exist_ok=True)
    items = sorted(plan.blobs.items(), key=lambda kv: (-kv[1][0], kv[0]))  # biggest first
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="layerforge-pull") as pool:
        try:
            for digest, size, action in pool.map(done, items):
                (result.fetched if action == "fetched" else result.present)[digest] = size
        except BaseException:
            puller.client.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
