"""Type stubs for the Rust extension module (rust/layerforge-py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeAlias, final

from layerforge.progress import ProgressCallback

# Defaults written `...` below are Rust expressions (`1 << 20`, `"/".to_string()`,
# `Vec::new()`) that the runtime signature shows as `...`; their values are noted beside them.

__all__ = [
    "__version__",
    "InputError",
    "CorruptError",
    "RuleError",
    "LayerSpec",
    "LayerResult",
    "DecompressResult",
    "build_layers",
    "decompress_blob",
    "copy_layers",
    "write_layer_members",
    "NydusLayerReport",
    "NydusBlob",
    "NydusResult",
    "convert_nydus",
    "SigningKey",
    "verify_signature",
    "generate_cosign_key_pair",
]

__version__: str

_Path: TypeAlias = str | os.PathLike[str]

class InputError(ValueError): ...
class CorruptError(ValueError): ...

class RuleError(InputError):
    setting: str
    value: str
    rule: str

@final
class LayerSpec:
    def __new__(cls, *, mtime: int = 1, uid: int = 0, gid: int = 0, keep_setuid: bool = False) -> LayerSpec: ...
    def add_path(self, src: _Path, dest: str) -> None: ...
    def add_tree(self, src: _Path, dest: str = ...) -> None: ...  # dest "/"
    def add_dir(self, dest: str, mode: int = 0o755) -> None: ...
    def add_symlink(self, dest: str, target: str) -> None: ...
    def add_file(self, dest: str, data: bytes, mode: int = 0o644) -> None: ...
    def add_node(self, dest: str, kind: str, major: int = 0, minor: int = 0, mode: int = 0o600) -> None: ...
    def add_perm_rule(
        self, pattern: str, mode: int | None = None, uid: int | None = None, gid: int | None = None
    ) -> None: ...
    def entries(self) -> list[tuple[str, str, int, int, str | None]]: ...
    def __len__(self) -> int: ...

@final
class LayerResult:
    @property
    def diff_id(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def uncompressed_size(self) -> int: ...
    @property
    def created(self) -> bool: ...

@final
class DecompressResult:
    @property
    def format(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def diff_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def uncompressed_size(self) -> int: ...

def build_layers(
    specs: list[LayerSpec],
    blob_dir: _Path,
    tmp_dir: _Path,
    *,
    format: str = "tar",
    compression: str = "gzip",
    level: int | None = None,
    threads: int = 0,
    chunk_size: int = ...,  # 1 << 20
    machine: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[LayerResult]: ...
def decompress_blob(
    src: _Path,
    dest: _Path | None = None,
    *,
    digest: str | None = None,
    size: int | None = None,
    label: str | None = None,
    progress: ProgressCallback | None = None,
) -> DecompressResult: ...
def copy_layers(
    dest: _Path,
    layers: Sequence[tuple[_Path, int, int, str, str]],
    *,
    threads: int = 0,
    progress: ProgressCallback | None = None,
) -> None: ...
def write_layer_members(
    dest: _Path,
    layers: Sequence[LayerSpec | tuple[_Path, int, str, str]],
    *,
    start: int = 0,
    known: Sequence[str] = ...,  # []
    mtime: int = 1,
    threads: int = 0,
    chunk_size: int = ...,  # 1 << 20
    machine: str | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[list[tuple[str, int, bool]], int]: ...

@final
class NydusLayerReport:
    @property
    def blob_digest(self) -> str | None: ...
    @property
    def blob_size(self) -> int | None: ...
    @property
    def created(self) -> bool: ...
    @property
    def chunks(self) -> int: ...
    @property
    def file_bytes(self) -> int: ...
    @property
    def dup_bytes(self) -> int: ...
    @property
    def lower_bytes(self) -> int: ...
    @property
    def dict_bytes(self) -> int: ...

@final
class NydusBlob:
    @property
    def digest(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def layer(self) -> int | None: ...
    @property
    def dict(self) -> int | None: ...

@final
class NydusResult:
    @property
    def layers(self) -> list[NydusLayerReport]: ...
    @property
    def blobs(self) -> list[NydusBlob]: ...
    @property
    def bootstrap(self) -> bytes: ...
    @property
    def dict_saved_bytes(self) -> int: ...

def convert_nydus(
    layers: list[tuple[_Path, str | None, int | None, str | None, str]],
    blob_dir: _Path,
    tmp_dir: _Path,
    *,
    chunk_size: int = ...,  # 1 << 20
    compressor: str = "zstd",
    digester: str = "blake3",
    chunk_dict: _Path | None = None,
    prefetch: list[str] = ...,  # []
    dedup_lower: bool = True,
    threads: int = 0,
    progress: ProgressCallback | None = None,
) -> NydusResult: ...

@final
class SigningKey:
    @staticmethod
    def from_pem(pem: bytes, password: bytes | None) -> SigningKey: ...
    def sign(self, message: bytes) -> bytes: ...
    def public_key_pem(self) -> str: ...

def verify_signature(public_key_pem: bytes, message: bytes, signature_der: bytes) -> bool: ...
def generate_cosign_key_pair(password: bytes) -> tuple[bytes, bytes]: ...
