//! New key pairs, as `cosign generate-key-pair` writes them.

use super::cosign_encrypted::{self, ScryptParams};
use super::ecdsa::SigningKey;
use crate::Result;

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
