"""Errors a user can act on. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class LayerforgeError(Exception):
    """A failure caused by input or environment, with a message naming what is wrong."""


class UsageError(LayerforgeError):
    """A bad command-line argument or option value (exit status 2)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


class LayoutError(LayerforgeError):
    """An OCI image layout that is missing, malformed, or lacks what was asked for."""
