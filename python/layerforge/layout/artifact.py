"""Artifacts that refer to an image (SBOMs, signatures): OCI image manifests with an
``artifactType``, the empty config, the payload as their one layer, and a ``subject``
pointing at the image. They sit untagged in ``index.json``; the registry client pushes them
through the referrers API or its tag-schema fallback."""

from __future__ import annotations

from collections.abc import Mapping

from layerforge.layout.oci_layout import OciLayout
from layerforge.model import media_types
from layerforge.model.annotations import CREATED, TITLE
from layerforge.model.descriptor import Descriptor
from layerforge.model.epoch import rfc3339
from layerforge.model.manifest import Manifest

EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"


def attach_artifact(
    layout: OciLayout,
    subject: Descriptor,
    *,
    artifact_type: str,
    payload: bytes,
    payload_media_type: str,
    title: str,
    epoch: int,
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    """Store an artifact manifest referring to ``subject`` and list it in index.json;
    ``annotations`` go on the manifest besides its ``created`` (what the referrers API lists,
    e.g. in-toto's predicate type)."""
    config = layout.put_blob(EMPTY_CONFIG, EMPTY_CONFIG_TYPE)
    blob = layout.put_blob(payload, payload_media_type).with_annotations({TITLE: title})
    manifest = Manifest(
        config=config,
        layers=(blob,),
        annotations={CREATED: rfc3339(epoch), **(annotations or {})},
        subject=Descriptor(media_type=subject.media_type, digest=subject.digest, size=subject.size),
        artifact_type=artifact_type,
    )
    stored = layout.put_json(manifest.to_json(), media_types.IMAGE_MANIFEST)
    entry = Descriptor(
        media_type=media_types.IMAGE_MANIFEST, digest=stored.digest, size=stored.size, artifact_type=artifact_type
    )
    layout.add_untagged(entry)
    return entry


def referrers(layout: OciLayout, subject_digest: str) -> list[tuple[Descriptor, Manifest]]:
    """Artifacts in the layout whose subject is ``subject_digest``."""
    out = []
    for entry in layout.read_index().manifests:
        if entry.artifact_type and entry.media_type == media_types.IMAGE_MANIFEST:
            m = layout.read_manifest(entry)
            if m.subject is not None and m.subject.digest == subject_digest:
                out.append((entry, m))
    return out
