//! ECDSA P-256 with SHA-256, as cosign signs: deterministic signatures (RFC 6979) in ASN.1
//! DER, public keys as SPKI `PUBLIC KEY` PEM.

use std::fmt;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::pkcs8::der::Decode;
use p256::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use p256::pkcs8::{SecretDocument, SubjectPublicKeyInfoRef};
use p256::{PublicKey, SecretKey};

use super::{key_kind, pem};
use crate::{Error, Result};

/// An ECDSA P-256 private key that signs. Its `Debug` shows no key material, and the key is
/// zeroed when dropped.
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl SigningKey {
    pub(crate) fn from_secret_key(key: &SecretKey) -> Self {
        SigningKey { inner: key.into() }
    }

    /// A new random key (from the operating system's generator).
    pub fn generate() -> Result<Self> {
        // A uniformly random scalar: 32 random bytes are out of range (zero, or at least the
        // group order) with probability below 2^-32, so this loop almost never repeats.
        loop {
            let bytes = zeroize::Zeroizing::new(super::random::random_bytes::<32>()?);
            if let Ok(key) = SecretKey::from_slice(&bytes[..]) {
                return Ok(Self::from_secret_key(&key));
            }
        }
    }

    /// Sign `message` (hashed with SHA-256): the ASN.1 DER signature cosign writes.
    /// Deterministic (RFC 6979): the same key and message give the same signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let sig: DerSignature = self
            .inner
            .try_sign(message)
            .map_err(|_| Error::input("signing: ECDSA signing failed"))?;
        Ok(sig.as_bytes().to_vec())
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`, LF line endings, a final
    /// newline), as `cosign generate-key-pair` writes `cosign.pub`.
    pub fn public_key_pem(&self) -> Result<String> {
        self.inner
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::input(format!("public key: cannot encode: {e}")))
    }

    /// The private key as PKCS#8 DER (zeroed when dropped).
    pub(crate) fn to_pkcs8_der(&self) -> Result<SecretDocument> {
        self.inner
            .to_pkcs8_der()
            .map_err(|_| Error::input("private key: cannot encode as PKCS#8"))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(ECDSA P-256)")
    }
}

/// Read an SPKI `PUBLIC KEY` PEM holding an ECDSA P-256 key (the first `PUBLIC KEY` block
/// of the document). Other algorithms and curves are errors that name them.
pub fn public_key_from_pem(pem_doc: &[u8]) -> Result<VerifyingKey> {
    const WHAT: &str = "public key";
    let blocks = pem::blocks(pem_doc, WHAT)?;
    let block = match blocks.iter().find(|b| b.label == "PUBLIC KEY") {
        Some(b) => b,
        None => {
            return Err(match blocks.first() {
                None => Error::input("public key: no PEM block found"),
                Some(b) if b.label == "RSA PUBLIC KEY" => key_kind::unsupported(WHAT, "RSA"),
                Some(b) => Error::input(format!(
                    "public key: expected a PUBLIC KEY PEM block, found {}",
                    b.label
                )),
            })
        }
    };
    let der = block.decode(WHAT)?;
    let spki = SubjectPublicKeyInfoRef::from_der(&der)
        .map_err(|e| Error::input(format!("public key: malformed SubjectPublicKeyInfo: {e}")))?;
    let (alg, curve) = spki
        .algorithm
        .oids()
        .map_err(|e| Error::input(format!("public key: malformed algorithm identifier: {e}")))?;
    key_kind::require_p256(WHAT, alg, curve)?;
    let key = PublicKey::from_public_key_der(&der)
        .map_err(|e| Error::input(format!("public key: not a valid P-256 point: {e}")))?;
    Ok(VerifyingKey::from(&key))
}

/// Whether `signature_der` is a valid ECDSA P-256 / SHA-256 signature of `message` by the key
/// in `public_key_pem` (SPKI PEM, see [`public_key_from_pem`]).
///
/// A signature that is not a well-formed ASN.1 DER ECDSA signature is `Ok(false)`, like any
/// other signature that does not verify (as Go's `ecdsa.VerifyASN1`, which cosign uses, says
/// `false`). Only a public key that cannot be used is an error.
pub fn verify_signature(
    public_key_pem: &[u8],
    message: &[u8],
    signature_der: &[u8],
) -> Result<bool> {
    let key = public_key_from_pem(public_key_pem)?;
    let Ok(sig) = Signature::from_der(signature_der) else {
        return Ok(false);
    };
    Ok(key.verify(message, &sig).is_ok())
}
