"""The `oci_image_index` target: a multi-platform image index of other image targets."""

from __future__ import annotations

from pants.engine.target import StringSequenceField, Target
from pants.util.strutil import help_text

from layerforge_pants.goals import roles
from layerforge_pants.goals.roles import INDEX_ENTRY, NYDUS_SOURCE
from layerforge_pants.goals.target_types import COMMON_IMAGE_FIELDS


class IndexImagesField(StringSequenceField):
    alias = "images"
    required = True
    help = help_text(
        lambda: (
            f"""
        Addresses of the image targets the index holds ({", ".join(f"`{k}`" for k in roles.allowed(INDEX_ENTRY))}).
        Each is packaged first; each entry carries its image's platform from the image's config
        (`os`, `architecture`, `variant`); an index among them is flattened into this one. Two
        images for one platform are an error naming both targets.
        """
        )
    )


class OciImageIndexTarget(Target):
    alias = "oci_image_index"
    roles = frozenset({NYDUS_SOURCE, INDEX_ENTRY})
    core_fields = (*COMMON_IMAGE_FIELDS, IndexImagesField)
    help = help_text(
        """
        A multi-platform OCI image index of other image targets (`layerforge index`), for
        example a `nix_oci_image` per `system`. `pants package` writes an OCI layout holding the
        index and every image's blobs under `dist/`; `pants publish` pushes the images first,
        then the index, under each tag.
        """
    )
