"""Backend entry points Pants calls when it loads ``layerforge_pants``.

No targets are registered yet: the image targets (nix_oci_image, unikraft_image,
nydus_image) and their package/publish rules are the Pants-backend issue's work.
"""

from __future__ import annotations


def target_types() -> list[type]:
    return []


def rules() -> list[object]:
    return []
