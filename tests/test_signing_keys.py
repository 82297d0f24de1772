"""The native signing primitives checked against an independent implementation (cryptography)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from layerforge._native import InputError, SigningKey, generate_cosign_key_pair, verify_signature

MESSAGE = b'{"critical":{"identity":{"docker-reference":"example.test/app"}}}'


def _private_pem(key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_a_cryptography_key_signs_what_cryptography_verifies(fmt: serialization.PrivateFormat) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = SigningKey.from_pem(_private_pem(key, fmt), None)
    assert signer.public_key_pem().encode() == _public_pem(key)
    signature = signer.sign(MESSAGE)
    key.public_key().verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))  # DER, SHA-256
    assert signer.sign(MESSAGE) == signature, "RFC 6979 signatures are deterministic"
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, MESSAGE + b" ", ec.ECDSA(hashes.SHA256()))


def test_a_cryptography_signature_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    public = _public_pem(key)
    assert verify_signature(public, MESSAGE, signature) is True
    assert verify_signature(public, MESSAGE + b" ", signature) is False
    assert verify_signature(public, MESSAGE, signature[:-1]) is False  # malformed DER: False
    assert verify_signature(public, MESSAGE, b"") is False
    other = _public_pem(ec.generate_private_key(ec.SECP256R1()))
    assert verify_signature(other, MESSAGE, signature) is False


def test_generated_cosign_pair_loads_with_its_password_only() -> None:
    private, public = generate_cosign_key_pair(b"correct horse")
    assert private.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    key = SigningKey.from_pem(private, b"correct horse")
    assert key.public_key_pem().encode() == public
    # The public key is an ordinary P-256 SPKI key to cryptography, and verifies its signatures.
    loaded = serialization.load_pem_public_key(public)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert isinstance(loaded.curve, ec.SECP256R1)
    loaded.verify(key.sign(MESSAGE), MESSAGE, ec.ECDSA(hashes.SHA256()))

    with pytest.raises(InputError) as wrong:
        SigningKey.from_pem(private, b"battery staple")
    assert str(wrong.value) == "cosign key: wrong password or corrupted key"
    with pytest.raises(InputError, match="a password is needed"):
        SigningKey.from_pem(private, None)


def test_other_keys_are_refused_by_name() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InputError) as private_err:
        SigningKey.from_pem(_private_pem(p384, serialization.PrivateFormat.PKCS8), None)
    assert str(private_err.value) == "private key: ECDSA P-384 keys are not supported (only ECDSA P-256)"
    with pytest.raises(InputError) as public_err:
        verify_signature(_public_pem(p384), MESSAGE, b"")
    assert str(public_err.value) == "public key: ECDSA P-384 keys are not supported (only ECDSA P-256)"
    with pytest.raises(InputError, match="no private key PEM block"):
        SigningKey.from_pem(b"not a key", None)


def test_repr_shows_no_key_material() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = SigningKey.from_pem(_private_pem(key, serialization.PrivateFormat.PKCS8), None)
    assert repr(signer) == "<SigningKey ECDSA P-256>"
