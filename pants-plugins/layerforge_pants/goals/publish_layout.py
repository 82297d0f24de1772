"""What a push of a packaged layout needs of its bytes. `publish` reads the layout's documents
(index.json, oci-layout, manifests and indexes, configs, and every blob of its referrers such
as SBOMs) from the package, asks the registry which of the image's layers it lacks (`layerforge
push --dry-run --json`, never cached) and gives the push the documents and only those layers:
with a remote cache and `[GLOBAL].remote_cache_eager_fetch = false`, a layer the registry has
is never downloaded. Anything this cannot read, and a question the registry does not answer,
gives the push the whole layout, as before."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pants.engine.fs import Digest, DigestContents, DigestSubset, PathGlobs
from pants.engine.process import FallibleProcessResult

#: Indexes nest at most this deep (as the push reads them).
MAX_DEPTH = 8
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_ANSWER_LIMIT = 64 << 20


def valid_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.match(value) is not None


@dataclass
class LayoutWalk:
    """The documents and layers of the layout at ``layout`` (a path in the package), read a
    level at a time: :meth:`start` with index.json, then :meth:`step` with the blobs each
    call names, until it names none. ``readable`` false: the layout is not one this can
    read (the push gets all of it, and says what is wrong)."""

    layout: str
    documents: set[str] = field(default_factory=set)
    layers: set[str] = field(default_factory=set)
    readable: bool = True
    #: Blobs to read next: their digest and whether they are a referrer's (all its blobs are documents).
    _next: dict[str, bool] = field(default_factory=dict)
    _depth: int = 0

    def blob_path(self, digest: str) -> str:
        return f"{self.layout}/blobs/sha256/{digest.removeprefix('sha256:')}"

    def index_globs(self) -> PathGlobs:
        return PathGlobs([f"{self.layout}/index.json"])

    def document_globs(self) -> PathGlobs:
        """index.json, oci-layout and the documents' blobs (a blob the package lacks, such as a
        shallow base's, is left out: the push finds it elsewhere)."""
        blobs = (self.blob_path(d) for d in sorted(self.documents))
        return PathGlobs([f"{self.layout}/index.json", f"{self.layout}/oci-layout", *blobs])

    def next_globs(self) -> PathGlobs:
        return PathGlobs([self.blob_path(d) for d in self._next])

    def start(self, contents: DigestContents) -> bool:
        """Read index.json; whether there are blobs to read next (:meth:`next_globs`)."""
        doc = self._json(contents, f"{self.layout}/index.json")
        entries = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            self.readable = False
            return False
        for entry in entries:
            referrer = isinstance(entry, dict) and "artifactType" in entry
            self._want(entry.get("digest") if isinstance(entry, dict) else None, referrer)
        return self.readable and bool(self._next)

    def step(self, contents: DigestContents) -> bool:
        """Read the blobs :meth:`next_globs` named; whether there are more to read."""
        reading, self._next = self._next, {}
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self.readable = False
        for digest, referrer in reading.items():
            if not self.readable:
                break
            self._read(self._json(contents, self.blob_path(digest)), referrer)
        return self.readable and bool(self._next)

    def _want(self, digest: object, referrer: bool) -> None:
        if not valid_digest(digest):
            self.readable = False
            return
        assert isinstance(digest, str)
        if digest not in self.documents:
            self.documents.add(digest)
            self._next[digest] = referrer

    def _read(self, doc: object, referrer: bool) -> None:
        if not isinstance(doc, dict):
            self.readable = False
            return
        if "manifests" in doc:  # an index: its manifests are read next
            children = doc["manifests"]
            if not isinstance(children, list):
                self.readable = False
                return
            for child in children:
                self._want(child.get("digest") if isinstance(child, dict) else None, referrer)
            return
        config, layers = doc.get("config"), doc.get("layers", [])
        if not isinstance(config, dict) or not isinstance(layers, list):
            self.readable = False
            return
        referrer = referrer or "subject" in doc
        for blob, is_layer in ((config, False), *((layer, True) for layer in layers)):
            digest = blob.get("digest") if isinstance(blob, dict) else None
            if not valid_digest(digest):
                self.readable = False
                return
            assert isinstance(digest, str)
            if is_layer and not referrer:
                self.layers.add(digest)
            else:
                self.documents.add(digest)
        self.layers -= self.documents

    def _json(self, contents: DigestContents, path: str) -> object:
        for fc in contents:
            if fc.path == path:
                try:
                    return json.loads(fc.content)
                except (ValueError, RecursionError):
                    break
        self.readable = False
        return None


def lacking_layers(walk: LayoutWalk, stdout: bytes) -> set[str] | None:
    """The layers of ``walk`` that a dry run's JSON plan (``stdout``) says the registry lacks
    (to push, mount or relay); None when the plan is not one."""
    if len(stdout) > _ANSWER_LIMIT:
        return None
    try:
        plan = json.loads(stdout)
    except (ValueError, RecursionError):
        return None
    blobs = plan.get("blobs") if isinstance(plan, dict) else None
    if not isinstance(blobs, list) or not all(isinstance(b, dict) and valid_digest(b.get("digest")) for b in blobs):
        return None
    planned = {b["digest"]: b.get("action") for b in blobs}
    if not walk.layers <= planned.keys():
        return None  # a plan of some other image
    return {d for d in walk.layers if planned[d] != "present"}


def layers_to_give(walk: LayoutWalk, asked: bool, answer: FallibleProcessResult | None) -> set[str] | None:
    """The layers a push of ``walk``'s layout gets besides its documents: those the dry run
    (``answer``) says the registry lacks; none for a push that is itself a dry run (not
    ``asked``); None, the whole package, for a layout this cannot read or a registry that did
    not answer."""
    if not walk.readable:
        return None
    if not asked:
        return set()
    if answer is None or answer.exit_code != 0:
        return None
    return lacking_layers(walk, answer.stdout)


def unanswered(target: str, answer: FallibleProcessResult) -> str:
    """The warning that the dry run asking what ``target`` lacks gave no answer."""
    lines = [line for line in answer.stderr.decode(errors="replace").splitlines() if line.strip()]
    if answer.exit_code == 0:
        why = "its answer is not a push plan"
    else:
        why = lines[-1].strip()[:300] if lines else f"exit code {answer.exit_code}"
    return f"Asking which layers {target} lacks failed ({why}): its push gets the whole layout."


def blob_subset(package: Digest, walk: LayoutWalk, digests: Iterable[str]) -> DigestSubset:
    """The blobs ``digests`` of the layout, as far as the package holds them."""
    return DigestSubset(package, PathGlobs([walk.blob_path(d) for d in sorted(digests)]))


def documents_subset(package: Digest, walk: LayoutWalk) -> DigestSubset:
    return DigestSubset(package, walk.document_globs())
