"""OCI and Docker media types used by layerforge."""

from __future__ import annotations

OCI_LAYOUT_VERSION = "1.0.0"

IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"

#: Layers stored as plain tar: the blob is the layer (its digest is the diff_id).
UNCOMPRESSED_LAYERS = frozenset({LAYER_TAR, DOCKER_LAYER_TAR})

MANIFEST_TYPES = frozenset({IMAGE_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({IMAGE_INDEX, DOCKER_MANIFEST_LIST})
#: Config media types of images (a manifest with another config is an artifact, such as an SBOM).
IMAGE_CONFIG_TYPES = frozenset({IMAGE_CONFIG, DOCKER_CONFIG})

#: Software bills of materials, as artifacts that refer to an image.
SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"

#: Layer media type for each compression name the native core accepts.
LAYER_BY_COMPRESSION = {
    "none": LAYER_TAR,
    "gzip": LAYER_TAR_GZIP,
    "zstd": LAYER_TAR_ZSTD,
}


def short_layer_type(media_type: str) -> str:
    """A compact label for listings (``tar+gzip``, ``nydus.blob``, ...)."""
    for prefix in ("application/vnd.oci.image.layer.v1.", "application/vnd.oci.image.layer.", "application/"):
        if media_type.startswith(prefix):
            return media_type[len(prefix) :]
    return media_type


#: The ``artifactType`` of cosign's signature and attestation objects (``sha256-<hex>.sig``
#: and ``.att``) when they are kept as referrers of the image.
COSIGN_SIGNATURES = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_ATTESTATIONS = "application/vnd.dev.cosign.artifact.att.v1+json"
COSIGN_ARTIFACT_TYPES = frozenset({COSIGN_SIGNATURES, COSIGN_ATTESTATIONS})
