"""Media types, annotations and paths of Nydus images (nydus-snapshotter ``pkg/converter``)."""

from __future__ import annotations

BLOB_MEDIA_TYPE = "application/vnd.oci.image.layer.nydus.blob.v1"
MANIFEST_ARTIFACT_TYPE = "application/vnd.nydus.image.manifest.v1+json"
OS_FEATURE = "nydus.remoteimage.v1"

ANNOTATION_BLOB = "containerd.io/snapshot/nydus-blob"
ANNOTATION_BOOTSTRAP = "containerd.io/snapshot/nydus-bootstrap"
ANNOTATION_FS_VERSION = "containerd.io/snapshot/nydus-fs-version"
FS_VERSION = "6"

#: Where the bootstrap sits inside the bootstrap layer's tar.
BOOTSTRAP_DIR = "image"
BOOTSTRAP_PATH = "image/image.boot"
