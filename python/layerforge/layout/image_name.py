"""``io.containerd.image.name`` on a layout's index entry: the full ``repository:tag`` that
``ctr images import`` (and BuildKit, nerdctl) name the image by. It is an annotation of the
entry in ``index.json`` only, so the manifest (and its digest) does not change."""

from __future__ import annotations

from layerforge.errors import UsageError
from layerforge.layout.oci_layout import OciLayout
from layerforge.model.repo_tags import IMAGE_NAME, is_repo_tag
from layerforge.trust.text import shown


def check_image_name(value: str | None, option: str = "--image-name") -> None:
    if value is not None and not is_repo_tag(value):
        raise UsageError(option, f"{shown(repr(value))} is not a docker image name NAME:TAG")


def name_entry(layout: OciLayout, ref: str, image_name: str) -> None:
    """Annotate the entry ``ref`` names with ``image_name`` (hold :meth:`OciLayout.locked`)."""
    entry = layout.resolve(ref)
    if entry.annotations.get(IMAGE_NAME) != image_name:
        layout.tag(entry.with_annotations({IMAGE_NAME: image_name}), ref)
