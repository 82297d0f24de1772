//! Offline ECDSA P-256 signing in cosign's formats: keys, signatures, verification.
//!
//! * [`private_key`]: reading a private key PEM (PKCS#8, SEC1 or cosign's encrypted key).
//! * [`cosign_encrypted`]: cosign's encrypted key envelope (scrypt + NaCl secretbox, JSON).
//! * [`ecdsa`]: signing (SHA-256, RFC 6979, ASN.1 DER signatures), public keys (SPKI PEM),
//!   verification.
//! * [`key_kind`]: names of key algorithms and curves, for errors about unsupported keys.
//! * [`pem`]: finding the PEM block of interest in a file that may hold several.
//!
//! Only P-256 keys are accepted, since that is what `cosign generate-key-pair` makes and
//! what layerforge signs with. Key files are untrusted input: every error is one line with
//! context, and none of them repeats key bytes or the password.

pub mod cosign_encrypted;
pub mod ecdsa;
pub mod key_kind;
pub mod pem;
pub mod private_key;

pub use cosign_encrypted::ScryptParams;
pub use ecdsa::{verify_signature, SigningKey};
pub use private_key::read_pem as read_private_key;

use crate::{Error, Result};

/// A new key pair as `cosign generate-key-pair` writes it: the private key encrypted with
/// `password` (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt with [`ScryptParams::COSIGN`]) and
/// the public key (SPKI `PUBLIC KEY` PEM). Both PEMs end with a newline.
pub fn generate_cosign_key_pair(password: &[u8]) -> Result<(String, String)> {
    let key = SigningKey::generate()?;
    let pkcs8 = key.to_pkcs8_der()?;
    let private_pem =
        cosign_encrypted::encrypt_pem(pkcs8.as_bytes(), password, ScryptParams::COSIGN)?;
    Ok((private_pem, key.public_key_pem()?))
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| {
        Error::io(
            "signing: reading randomness from the system",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(buf)
}

#[cfg(test)]
mod tests;
