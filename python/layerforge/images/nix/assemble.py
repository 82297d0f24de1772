"""Turning a plan and its built layers into the image: config (with the base image's
config merged at planning time), manifest, tag, and the attestation artifacts (SPDX and
CycloneDX SBOMs, SLSA provenance) when the plan asks for an SBOM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerforge.errors import LayerforgeError
from layerforge.images.nix.cyclonedx import CYCLONEDX_TITLE, cyclonedx_document
from layerforge.images.nix.plan import NixPlan
from layerforge.images.nix.provenance import (
    PROVENANCE_TITLE,
    BuildInputs,
    provenance_statement,
)
from layerforge.images.nix.sbom import SPDX_TITLE, spdx_document
from layerforge.layers.build import BuiltLayer
from layerforge.layout.artifact import attach_artifact
from layerforge.layout.image_reader import StoredImage, import_blobs
from layerforge.layout.image_writer import ImageResult, write_image
from layerforge.layout.oci_layout import OciLayout
from layerforge.model import in_toto, media_types
from layerforge.model.annotations import BASE_DIGEST, BASE_NAME, image_annotations
from layerforge.model.canonical_json import canonical_json
from layerforge.model.epoch import rfc3339
from layerforge.model.image_config import HistoryEntry, ImageConfig
from layerforge.model.platform import linux_platform


@dataclass(frozen=True)
class NixImageResult:
    image: ImageResult
    plan: NixPlan
    #: The digests of the artifact manifests of the SPDX SBOM, the CycloneDX SBOM and the
    #: provenance statement (all or none).
    sbom: str | None = None
    cyclonedx: str | None = None
    provenance: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def attestations(self) -> dict[str, str]:
        """Each attached artifact's payload file name -> its manifest's digest."""
        named = {SPDX_TITLE: self.sbom, CYCLONEDX_TITLE: self.cyclonedx, PROVENANCE_TITLE: self.provenance}
        return {name: digest for name, digest in named.items() if digest is not None}


def _history(plan: NixPlan, created: str) -> list[HistoryEntry]:
    return [HistoryEntry(created, job.history()) for job in plan.layer_jobs()]


def image_config(
    plan: NixPlan, diff_ids: Sequence[str], base: StoredImage | None
) -> tuple[ImageConfig, dict[str, str]]:
    """The image config (the base image's layers, then ``diff_ids``, the plan's layers) and
    the manifest annotations."""
    created = rfc3339(plan.epoch)
    config = ImageConfig(
        platform=linux_platform(plan.arch),
        created=created,
        diff_ids=(*(base.config.diff_ids if base else ()), *diff_ids),
        config=plan.runtime,
        history=(*(base.config.history if base else ()), *_history(plan, created)),
    )
    annotations = image_annotations(plan.epoch, plan.source, plan.revision)
    if base is not None:
        annotations[BASE_DIGEST] = base.descriptor.digest
        if base.ref:
            annotations[BASE_NAME] = base.ref
    return config, annotations


def assemble(
    layout: OciLayout,
    plan: NixPlan,
    layers: Sequence[BuiltLayer],
    base: StoredImage | None,
    *,
    layer_blobs_added_later: bool = False,
    build: BuildInputs | None = None,
) -> NixImageResult:
    """Write config, manifest and attestations into ``layout`` (locked by the caller), whose
    blob store already holds ``layers`` (unless the caller adds them afterwards: a build
    system that keeps each layer's blob in its own store and merges them into the output).
    ``build`` is what the provenance records beyond the plan."""
    planned = len(plan.layer_jobs())
    if len(layers) != planned:
        raise LayerforgeError(f"the plan has {planned} layers, {len(layers)} were given")
    if (plan.base is None) != (base is None) or (
        base is not None and plan.base and base.descriptor.digest != plan.base.digest
    ):
        want = plan.base.digest if plan.base else "none"
        raise LayerforgeError(f"the plan was made on base image {want}; a different base image was given")
    if base is not None:
        import_blobs(base.layout, layout, [*base.manifest.layers], shallow=True)
    config, annotations = image_config(plan, [layer.diff_id for layer in layers], base)
    image = write_image(
        layout,
        config,
        [*(base.manifest.layers if base else ()), *(layer.descriptor for layer in layers)],
        annotations=annotations,
        ref=plan.ref,
        added_later=frozenset(layer.descriptor.digest for layer in layers) if layer_blobs_added_later else frozenset(),
    )
    if not plan.sbom:
        return NixImageResult(image=image, plan=plan)
    build = build or BuildInputs()
    name, digest = build.image_name or plan.ref, image.manifest.digest

    def attach(
        payload: dict[str, object], media_type: str, title: str, annotations: dict[str, str] | None = None
    ) -> str:
        return attach_artifact(
            layout,
            image.manifest,
            artifact_type=media_type,
            payload=canonical_json(payload),
            payload_media_type=media_type,
            title=title,
            epoch=plan.epoch,
            annotations=annotations,
        ).digest

    return NixImageResult(
        image=image,
        plan=plan,
        sbom=attach(spdx_document(plan.closure, plan.ref, plan.epoch), media_types.SPDX_JSON, SPDX_TITLE),
        cyclonedx=attach(
            cyclonedx_document(plan.closure, name, digest, plan.epoch), media_types.CYCLONEDX_JSON, CYCLONEDX_TITLE
        ),
        provenance=attach(
            provenance_statement(plan, digest, build),
            in_toto.MEDIA_TYPE,
            PROVENANCE_TITLE,
            {in_toto.PREDICATE_TYPE_ANNOTATION: in_toto.SLSA_PROVENANCE_V1},
        ),
    )
