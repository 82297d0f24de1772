"""Well-known annotation keys and the standard set layerforge writes."""

from __future__ import annotations

from layerforge.model.epoch import rfc3339

REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
TITLE = "org.opencontainers.image.title"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_NAME = "org.opencontainers.image.base.name"
#: On index.json: the layout is shallow. Layer blobs its manifests list may be absent; they
#: are in the repositories named (``REGISTRY/REPO``, comma-separated, sorted).
SHALLOW = "dev.layerforge.shallow"


def image_annotations(epoch: int, source: str | None = None, revision: str | None = None) -> dict[str, str]:
    """``created`` from SOURCE_DATE_EPOCH, plus ``source``/``revision`` when given."""
    out = {CREATED: rfc3339(epoch)}
    if source:
        out[SOURCE] = source
    if revision:
        out[REVISION] = revision
    return out
