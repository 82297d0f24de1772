"""The error of a failed registry operation (its own module: the transport and the TLS rules
both raise it)."""

from __future__ import annotations

from layerforge.errors import LayerforgeError


class RegistryError(LayerforgeError):
    """A failed registry operation; ``status`` and registry error ``codes`` when known."""

    def __init__(self, message: str, status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes
