//! Offline ECDSA P-256 signing in cosign's formats: keys, signatures, verification.
//!
//! * [`private_key`]: reading a private key PEM (PKCS#8, SEC1 or cosign's encrypted key).
//! * [`cosign_encrypted`]: cosign's encrypted key envelope (scrypt + NaCl secretbox, JSON).
//! * [`ecdsa`]: signing (SHA-256, RFC 6979, ASN.1 DER signatures), public keys (SPKI PEM),
//!   verification.
//! * [`key_kind`]: names of key algorithms and curves, for errors about unsupported keys.
//! * [`pem`]: finding the PEM block of interest in a file that may hold several.
//! * [`key_pair`]: new key pairs as `cosign generate-key-pair` writes them.
//! * [`random`]: randomness from the operating system.
//!
//! Only P-256 keys are accepted, since that is what `cosign generate-key-pair` makes and
//! what layerforge signs with. Key files are untrusted input: every error is one line with
//! context, and none of them repeats key bytes or the password.

pub mod cosign_encrypted;
pub mod ecdsa;
pub mod key_kind;
pub mod key_pair;
pub mod pem;
pub mod private_key;
pub mod random;

pub use cosign_encrypted::ScryptParams;
pub use ecdsa::{verify_signature, SigningKey};
pub use key_pair::generate_cosign_key_pair;
pub use private_key::read_pem as read_private_key;

#[cfg(test)]
mod tests;
