"""What a push would send (``layerforge push --dry-run``): the image's blobs, manifests,
referrers and tags, each checked against the registry with HEAD requests only (a pull scope
is enough, nothing is uploaded, mounted or tagged). A blob the registry lacks would be
mounted when another repository of that registry is known to hold it, relayed from its
source when a shallow layout lacks it, else uploaded. A blob absent from a layout that is not
shallow is marked so: the push needs the registry to have it, or to mount it. When the
registry holds the image's manifest it holds every blob the manifest names: those are present
without asking each."""

from __future__ import annotations

from dataclasses import dataclass, field

from layerforge.errors import LayerforgeError
from layerforge.layout.artifact import referrers
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.descriptor import Descriptor
from layerforge.registry.client import RegistryClient
from layerforge.registry.known_blobs import KnownBlobs
from layerforge.registry.push import _Graph, _tags_of
from layerforge.registry.reference import ImageName
from layerforge.registry.shallow_blobs import ShallowBlobs

#: What a dry run says of one blob, manifest or tag.
PRESENT, PUSH, MOUNT, RELAY = "present", "push", "mount", "relay"
TAG, UNCHANGED = "tag", "unchanged"


@dataclass(frozen=True)
class PlannedBlob:
    digest: str
    size: int
    action: str  # present | push | mount | relay
    source: str | None = None  # the repository a mount would come from
    absent: bool = False  # not in the layout (the push cannot upload it)


@dataclass(frozen=True)
class PlannedTag:
    tag: str
    action: str  # tag | unchanged
    current: str | None  # the digest the tag names now, if any


@dataclass
class PushPlan:
    target: ImageName
    digest: str
    media_type: str
    blobs: list[PlannedBlob] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (digest, present | push)
    tags: list[PlannedTag] = field(default_factory=list)
    referrers: list[tuple[str, str]] = field(default_factory=list)  # (digest, present | push)

    def count(self, action: str) -> int:
        return sum(1 for b in self.blobs if b.action == action)

    def bytes(self, action: str) -> int:
        return sum(b.size for b in self.blobs if b.action == action)


def plan_push(
    layout: OciLayout,
    ref: str | None,
    target: ImageName,
    client: RegistryClient,
    *,
    extra_tags: tuple[str, ...] = (),
    known: KnownBlobs | None = None,
) -> PushPlan:
    entry = layout.resolve(ref)
    root = Descriptor(media_type=entry.media_type, digest=entry.digest, size=entry.size)
    if target.digest and target.digest != root.digest:
        raise LayerforgeError(f"{target}: the layout's image is {root.digest}, not {target.digest}")
    known = known or KnownBlobs(None)
    repo = target.repository
    shallow = ShallowBlobs(layout, None)
    graph = _Graph()
    graph.add_manifest(layout, root, shallow=shallow)
    plan = PushPlan(target=target, digest=root.digest, media_type=root.media_type)
    for tag in _tags_of(target, extra_tags):
        info = client.head_manifest(repo, tag)
        current = info.digest if info is not None else None
        plan.tags.append(PlannedTag(tag, UNCHANGED if current == root.digest else TAG, current))
    for desc, _ in graph.manifests:
        plan.manifests.append((desc.digest, PRESENT if client.head_manifest(repo, desc.digest) else PUSH))
    held = plan.manifests[-1][1] == PRESENT  # the root, after its children
    for digest, size in sorted(graph.blobs.items()):
        absent = digest in graph.absent
        if held:
            plan.blobs.append(PlannedBlob(digest, size, PRESENT, absent=absent))
        else:
            plan.blobs.append(_blob(client, repo, (digest, size), known=known, shallow=shallow, absent=absent))
    for desc, _ in graph.manifests:
        for artifact, _manifest in referrers(layout, desc.digest):
            present = client.head_manifest(repo, artifact.digest) is not None
            plan.referrers.append((artifact.digest, PRESENT if present else PUSH))
    return plan


def _blob(
    client: RegistryClient,
    repo: str,
    blob: tuple[str, int],
    *,
    known: KnownBlobs,
    shallow: ShallowBlobs,
    absent: bool,
) -> PlannedBlob:
    digest, size = blob
    if client.blob_exists(repo, digest, size):
        return PlannedBlob(digest, size, PRESENT, absent=absent)
    if shallow.lacks(digest):
        return PlannedBlob(digest, size, RELAY)
    source = known.find(client.registry, digest, exclude=repo)
    if source is not None:
        return PlannedBlob(digest, size, MOUNT, source, absent=absent)
    return PlannedBlob(digest, size, PUSH, absent=absent)
