//! Reading a private key PEM: unencrypted PKCS#8 or SEC1 as OpenSSL writes them, or
//! cosign's encrypted key.

use p256::pkcs8::der::Decode;
use p256::pkcs8::{DecodePrivateKey, PrivateKeyInfoRef};
use p256::SecretKey;

use super::ecdsa::SigningKey;
use super::{cosign_encrypted, key_kind, pem};
use crate::{Error, Result};

/// PEM label of PKCS#8 (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
pub const PKCS8_LABEL: &str = "PRIVATE KEY";
/// PEM label of SEC1 (`openssl ecparam -genkey -name prime256v1`).
pub const SEC1_LABEL: &str = "EC PRIVATE KEY";
/// PEM label of the curve parameters `openssl ecparam -genkey` writes before the key.
const EC_PARAMETERS_LABEL: &str = "EC PARAMETERS";

/// Read the private key of a PEM document. The first block other than `EC PARAMETERS` is
/// the key:
///
/// * `PRIVATE KEY` (PKCS#8) and `EC PRIVATE KEY` (SEC1): unencrypted; `password` is ignored.
/// * `ENCRYPTED SIGSTORE PRIVATE KEY` and `ENCRYPTED COSIGN PRIVATE KEY`: cosign's encrypted
///   key, which needs `password` (`Some(b"")` for a key encrypted with an empty password).
///
/// The key must be ECDSA P-256; any other kind is an error naming it.
pub fn read_pem(doc: &[u8], password: Option<&[u8]>) -> Result<SigningKey> {
    const WHAT: &str = "private key";
    let blocks = pem::blocks(doc, WHAT)?;
    let block = blocks
        .iter()
        .find(|b| b.label != EC_PARAMETERS_LABEL)
        .ok_or_else(|| Error::input("private key: no private key PEM block found"))?;
    match block.label {
        PKCS8_LABEL => from_pkcs8_der(&block.decode(WHAT)?, WHAT),
        SEC1_LABEL => from_sec1_der(&block.decode(WHAT)?, WHAT),
        label if cosign_encrypted::LABELS.contains(&label) => {
            const COSIGN: &str = "cosign key";
            let password = password.ok_or_else(|| {
                Error::input("cosign key: the key is encrypted: a password is needed")
            })?;
            let envelope = block.decode(COSIGN)?;
            let pkcs8 = cosign_encrypted::decrypt(&envelope, password)?;
            from_pkcs8_der(&pkcs8, COSIGN)
        }
        "RSA PRIVATE KEY" => Err(key_kind::unsupported(WHAT, "RSA")),
        "DSA PRIVATE KEY" => Err(key_kind::unsupported(WHAT, "DSA")),
        "ENCRYPTED PRIVATE KEY" => Err(Error::input(
            "private key: encrypted PKCS#8 (ENCRYPTED PRIVATE KEY) is not supported: \
             use an unencrypted PKCS#8 key or cosign's encrypted key",
        )),
        "PUBLIC KEY" => Err(Error::input(
            "private key: the PEM holds a PUBLIC KEY, not a private key",
        )),
        other => Err(Error::input(format!(
            "private key: unsupported PEM block {other} (expected PRIVATE KEY, EC PRIVATE KEY \
             or ENCRYPTED SIGSTORE PRIVATE KEY)"
        ))),
    }
}

/// An ECDSA P-256 key from PKCS#8 DER (`PrivateKeyInfo`). `what` names the source in errors.
pub fn from_pkcs8_der(der: &[u8], what: &str) -> Result<SigningKey> {
    let info = PrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::input(format!("{what}: malformed PKCS#8 private key: {e}")))?;
    let (alg, curve) = info
        .algorithm
        .oids()
        .map_err(|e| Error::input(format!("{what}: malformed PKCS#8 algorithm: {e}")))?;
    key_kind::require_p256(what, alg, curve)?;
    let key = SecretKey::from_pkcs8_der(der).map_err(|_| invalid_key(what))?;
    Ok(SigningKey::from_secret_key(&key))
}

/// An ECDSA P-256 key from SEC1 DER (`ECPrivateKey`, which must name its curve).
pub fn from_sec1_der(der: &[u8], what: &str) -> Result<SigningKey> {
    let ec = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| Error::input(format!("{what}: malformed EC private key: {e}")))?;
    let curve = ec.parameters.and_then(|p| p.named_curve());
    if curve != Some(key_kind::P256) {
        return Err(key_kind::unsupported(
            what,
            &key_kind::describe_curve(curve),
        ));
    }
    let key = SecretKey::try_from(ec).map_err(|_| invalid_key(what))?;
    Ok(SigningKey::from_secret_key(&key))
}

fn invalid_key(what: &str) -> Error {
    Error::input(format!(
        "{what}: invalid P-256 private key (scalar out of range, or a public key that does not match it)"
    ))
}
