"""Where signing and verifying keys come from: ``--key PATH`` or ``--key env://VAR`` (the PEM
itself in the variable, as cosign reads it), and ``COSIGN_PASSWORD`` for a key in cosign's
encrypted format. A key's bytes and its password are never logged, printed or put in an
error message: errors name the key by where it came from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from layerforge._native import InputError, SigningKey, verify_signature
from layerforge.errors import LayerforgeError
from layerforge.trust.blobs import BlobMissing, read_document

#: cosign's name for the password of an encrypted key.
PASSWORD_ENV = "COSIGN_PASSWORD"
ENV_PREFIX = "env://"
#: A PEM key file is a few hundred bytes; anything much larger is not a key.
MAX_KEY_BYTES = 64 << 10


def read_key_pem(spec: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The PEM bytes ``spec`` names (a file, or ``env://VAR``)."""
    env = os.environ if environ is None else environ
    if spec.startswith(ENV_PREFIX):
        var = spec[len(ENV_PREFIX) :]
        value = env.get(var)
        if not var or value is None:
            raise LayerforgeError(f"key {spec}: the environment variable {var or '(none)'} is not set")
        data = value.encode()
    else:
        try:
            data = read_document(Path(spec), f"key {spec}", limit=MAX_KEY_BYTES, follow=True)
        except BlobMissing:
            raise LayerforgeError(f"key {spec}: no such file") from None
        except LayerforgeError:
            raise LayerforgeError(f"key {spec}: not a readable file of at most {MAX_KEY_BYTES >> 10} KiB") from None
    if len(data) > MAX_KEY_BYTES:
        raise LayerforgeError(f"key {spec}: more than {MAX_KEY_BYTES >> 10} KiB, not a PEM key")
    return data


def load_signing_key(spec: str, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The private key ``spec`` names; an encrypted one is opened with ``COSIGN_PASSWORD``."""
    env = os.environ if environ is None else environ
    pem = read_key_pem(spec, env)
    password = env.get(PASSWORD_ENV)
    try:
        return SigningKey.from_pem(pem, None if password is None else password.encode())
    except InputError as e:
        hint = f" (set {PASSWORD_ENV})" if password is None and b"ENCRYPTED" in pem else ""
        raise LayerforgeError(f"key {spec}: {e}{hint}") from None


def read_public_key(spec: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The public key PEM ``spec`` names: an ECDSA P-256 SPKI PEM (checked here)."""
    pem = read_key_pem(spec, environ)
    if b"PRIVATE KEY" in pem:
        raise LayerforgeError(f"key {spec}: a private key; verify with the public key (cosign.pub)")
    try:
        verify_signature(pem, b"", b"")  # a usable key or InputError; an empty signature never verifies
    except InputError as e:
        raise LayerforgeError(f"key {spec}: {e}") from None
    return pem
