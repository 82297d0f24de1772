"""Where cosign objects live: one contract for a layout and a registry. Signing reads the
object already there for an image and kind, adds its layers and saves the result; verifying
reads the object and its payloads. Everything read is hostile until checked: a payload is
returned only when its bytes match the layer's digest and size."""

from __future__ import annotations

from typing import Protocol

from layerforge.model.descriptor import Descriptor
from layerforge.model.manifest import Manifest
from layerforge.signing.cosign_objects import CosignObject, Kind


class CosignStore(Protocol):
    #: How messages name the store (a layout directory, REGISTRY/REPO).
    where: str

    def find(self, subject: str, kind: Kind) -> Manifest | None:
        """The object of ``kind`` for image ``subject``, if there is one."""
        ...

    def payload(self, desc: Descriptor) -> bytes:
        """A layer's bytes, checked against its digest and size."""
        ...

    def save(self, subject: Descriptor, kind: Kind, obj: CosignObject) -> None:
        """Store ``obj`` as the object of ``kind`` for ``subject`` (blobs first)."""
        ...
