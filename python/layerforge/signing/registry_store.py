"""Cosign objects in a registry, where cosign keeps them: the manifest tagged
``sha256-<hex>.sig`` / ``.att`` in the image's repository. Saving uploads the blobs the
repository lacks, then PUTs the manifest under that tag (the client reads it back). What the
registry answers is read as hostile: a manifest through the model's checks, a payload
bounded by its descriptor and checked against its digest."""

from __future__ import annotations

import hashlib
import http.client
import tempfile
from pathlib import Path

from layerforge.errors import LayerforgeError
from layerforge.model import media_types
from layerforge.model.descriptor import Descriptor
from layerforge.model.manifest import Manifest
from layerforge.registry import answers
from layerforge.registry.client import RegistryClient
from layerforge.signing.cosign_objects import CosignObject, Kind
from layerforge.trust.blobs import MAX_DOCUMENT
from layerforge.trust.json_shape import ShapeError


class RegistryStore:
    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository
        self.where = f"{client.registry}/{repository}"

    def find(self, subject: str, kind: Kind) -> Manifest | None:
        tag = kind.tag(subject)
        found = self.client.get_manifest(self.repository, tag)
        if found is None:
            return None
        what = f"{self.where}:{tag}"
        try:
            manifest = Manifest.from_json(answers.json_body(found[0], what), what)
        except (ShapeError, TypeError, ValueError, AttributeError, KeyError):
            raise LayerforgeError(f"{what} is not a well-formed image manifest") from None
        return manifest

    def payload(self, desc: Descriptor) -> bytes:
        what = f"{self.where}: blob {desc.digest}"
        if desc.size > MAX_DOCUMENT:
            raise LayerforgeError(f"{what} is {desc.size} bytes, more than a payload may have")
        got: list[bytes] = []

        def sink(resp: http.client.HTTPResponse) -> None:
            got.clear()
            data = resp.read(desc.size + 1)
            if len(data) != desc.size or "sha256:" + hashlib.sha256(data).hexdigest() != desc.digest:
                raise LayerforgeError(f"{what}: the registry sent bytes that do not match the descriptor; refused")
            got.append(data)

        self.client.get_blob(self.repository, desc.digest, desc.size, sink)
        return got[0]

    def save(self, subject: Descriptor, kind: Kind, obj: CosignObject) -> None:
        with tempfile.TemporaryDirectory(prefix="layerforge-sign-") as tmp:
            for digest, data in obj.blobs.items():
                if self.client.blob_exists(self.repository, digest, len(data)):
                    continue
                path = Path(tmp) / digest.replace(":", "-")
                path.write_bytes(data)
                self.client.upload_blob(self.repository, digest, path, len(data))
        self.client.put_manifest(
            self.repository, kind.tag(subject.digest), obj.manifest, media_types.IMAGE_MANIFEST, obj.digest
        )
