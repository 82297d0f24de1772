//! cosign's encrypted private key: `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----` (or the
//! older `ENCRYPTED COSIGN PRIVATE KEY` label) around a JSON envelope:
//!
//! ```json
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<base64>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64>"},"ciphertext":"<base64>"}
//! ```
//!
//! The box key is scrypt(password, salt, N, r, p) of 32 bytes; the ciphertext is NaCl's
//! secretbox (XSalsa20-Poly1305, the 16-byte tag first) of the key's PKCS#8 DER, under a
//! 24-byte nonce. Byte strings are standard base64 with padding (Go's `encoding/json`).
//!
//! Key files are untrusted: the scrypt parameters are bounded ([`ScryptParams::check`]) so a
//! crafted file cannot make reading it take gigabytes or minutes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use p256::pkcs8::der::pem as rfc7468;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The label cosign writes today.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of keys written by older cosign versions (still read by cosign).
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// Both labels, as read.
pub const LABELS: [&str; 2] = [SIGSTORE_LABEL, COSIGN_LABEL];

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

const WHAT: &str = "cosign key";

/// scrypt's cost parameters: `n` (a power of two), `r` and `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    pub n: u64,
    pub r: u64,
    pub p: u64,
}

impl ScryptParams {
    /// N=65536 r=8 p=1: what `cosign generate-key-pair` writes today (go-securesystemslib
    /// v0.11's `Encrypt`); cosign also reads the older N=32768 and the stronger N=131072.
    pub const COSIGN: ScryptParams = ScryptParams {
        n: 65536,
        r: 8,
        p: 1,
    };
    /// Largest N read: 2^20.
    pub const MAX_LOG_N: u32 = 20;
    /// Largest memory scrypt may take while reading a key (128 * N * r bytes): 256 MiB,
    /// twice what the strongest parameters cosign writes (N=2^17, r=8) take.
    pub const MAX_MEMORY: u64 = 256 << 20;
    /// Largest N * r * p read (time is proportional to it): 2^22, four times cosign's strongest.
    pub const MAX_WORK: u64 = 1 << 22;

    /// The parameters as scrypt takes them, when they are within the bounds above.
    pub fn check(&self) -> Result<scrypt::Params> {
        let ScryptParams { n, r, p } = *self;
        let bad = |why: &str| {
            Error::input(format!(
                "{WHAT}: scrypt parameters N={n} r={r} p={p} refused: {why}"
            ))
        };
        if n < 2 || !n.is_power_of_two() {
            return Err(bad("N must be a power of two above 1"));
        }
        if n.trailing_zeros() > Self::MAX_LOG_N {
            return Err(bad("N is above 2^20"));
        }
        if r == 0 || p == 0 {
            return Err(bad("r and p must be at least 1"));
        }
        let memory = r.checked_mul(128 * n);
        if memory.map_or(true, |m| m > Self::MAX_MEMORY) {
            return Err(bad("128*N*r is above 256 MiB"));
        }
        let work = r.checked_mul(n).and_then(|nr| nr.checked_mul(p));
        if work.map_or(true, |w| w > Self::MAX_WORK) {
            return Err(bad("N*r*p is above 2^22"));
        }
        // In range: n < 2^21 (log below 64), r <= 2^21, p <= 2^21.
        let (log_n, r32, p32) = (n.trailing_zeros() as u8, r as u32, p as u32);
        scrypt::Params::new(log_n, r32, p32).map_err(|_| bad("rejected by scrypt"))
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::{Engine, BASE64};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("a byte string that is not base64"))
    }
}

/// Decrypt a cosign envelope (the JSON inside the PEM) with `password`: the PKCS#8 DER it
/// seals, zeroed when dropped.
pub fn decrypt(envelope_json: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let env: Envelope = serde_json::from_slice(envelope_json).map_err(|e| {
        Error::input(format!(
            "{WHAT}: not cosign's encrypted key JSON: {}",
            short(&e.to_string())
        ))
    })?;
    if env.kdf.name != KDF_NAME {
        return Err(Error::input(format!(
            "{WHAT}: unsupported key derivation {:?} (expected {KDF_NAME:?})",
            short(&env.kdf.name)
        )));
    }
    if env.cipher.name != CIPHER_NAME {
        return Err(Error::input(format!(
            "{WHAT}: unsupported cipher {:?} (expected {CIPHER_NAME:?})",
            short(&env.cipher.name)
        )));
    }
    let params = ScryptParams {
        n: env.kdf.params.n,
        r: env.kdf.params.r,
        p: env.kdf.params.p,
    }
    .check()?;
    if env.cipher.nonce.len() != NONCE_LEN {
        return Err(Error::input(format!(
            "{WHAT}: the nonce is {} bytes, not {NONCE_LEN}",
            env.cipher.nonce.len()
        )));
    }
    let key = derive_key(password, &env.kdf.salt, &params)?;
    let plaintext = XSalsa20Poly1305::new(Key::from_slice(&key[..]))
        .decrypt(Nonce::from_slice(&env.cipher.nonce), &env.ciphertext[..])
        .map_err(|_| Error::input(format!("{WHAT}: wrong password or corrupted key")))?;
    Ok(Zeroizing::new(plaintext))
}

/// Seal `plaintext` with `password` into cosign's JSON envelope (fresh random salt and nonce).
pub fn encrypt(plaintext: &[u8], password: &[u8], params: ScryptParams) -> Result<Vec<u8>> {
    let scrypt_params = params.check()?;
    let salt = super::random::random_bytes::<SALT_LEN>()?;
    let nonce = super::random::random_bytes::<NONCE_LEN>()?;
    let key = derive_key(password, &salt, &scrypt_params)?;
    let ciphertext = XSalsa20Poly1305::new(Key::from_slice(&key[..]))
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| Error::input(format!("{WHAT}: encryption failed")))?;
    let env = Envelope {
        kdf: Kdf {
            name: KDF_NAME.to_owned(),
            params: KdfParams {
                n: params.n,
                r: params.r,
                p: params.p,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: CIPHER_NAME.to_owned(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&env)
        .map_err(|e| Error::input(format!("{WHAT}: cannot write the JSON envelope: {e}")))
}

/// A private key (its PKCS#8 DER) as cosign's encrypted private key PEM (`ENCRYPTED
/// SIGSTORE PRIVATE KEY`, 64-column base64, LF line endings, a final newline).
pub fn encrypt_pem(pkcs8_der: &[u8], password: &[u8], params: ScryptParams) -> Result<String> {
    let envelope = encrypt(pkcs8_der, password, params)?;
    rfc7468::encode_string(SIGSTORE_LABEL, rfc7468::LineEnding::LF, &envelope)
        .map_err(|e| Error::input(format!("{WHAT}: cannot write PEM: {e}")))
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    params: &scrypt::Params,
) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, params, &mut key[..])
        .map_err(|_| Error::input(format!("{WHAT}: scrypt refused its output length")))?;
    Ok(key)
}

/// At most 80 characters of `s`, for errors that quote the file.
fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_within_bounds() {
        for (n, r, p) in [
            (32768, 8, 1),
            (65536, 8, 1),
            (131072, 8, 1),
            (2, 1, 1),
            (1 << 20, 2, 2),
        ] {
            assert!(ScryptParams { n, r, p }.check().is_ok(), "{n} {r} {p}");
        }
    }

    #[test]
    fn absurd_params_refused() {
        for (n, r, p, why) in [
            (0, 8, 1, "N must be a power of two above 1"),
            (1, 8, 1, "N must be a power of two above 1"),
            (32767, 8, 1, "N must be a power of two above 1"),
            (1 << 21, 1, 1, "N is above 2^20"),
            (1 << 63, 8, 1, "N is above 2^20"),
            (32768, 0, 1, "r and p must be at least 1"),
            (32768, 8, 0, "r and p must be at least 1"),
            (1 << 20, 8, 1, "128*N*r is above 256 MiB"),
            (32768, u64::MAX, 1, "128*N*r is above 256 MiB"),
            (32768, 8, 1 << 20, "N*r*p is above 2^22"),
            (32768, 8, u64::MAX, "N*r*p is above 2^22"),
        ] {
            let e = ScryptParams { n, r, p }.check().unwrap_err().to_string();
            assert_eq!(
                e,
                format!("cosign key: scrypt parameters N={n} r={r} p={p} refused: {why}")
            );
        }
    }

    #[test]
    fn seal_and_open() {
        let json = encrypt(
            b"secret",
            b"pw",
            ScryptParams {
                n: 1024,
                r: 8,
                p: 1,
            },
        )
        .unwrap();
        assert_eq!(&decrypt(&json, b"pw").unwrap()[..], b"secret");
        let e = decrypt(&json, b"pW").unwrap_err().to_string();
        assert_eq!(e, "cosign key: wrong password or corrupted key");
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v["kdf"]["params"],
            serde_json::json!({"N": 1024, "r": 8, "p": 1})
        );
        assert_eq!(
            BASE64
                .decode(v["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            BASE64
                .decode(v["cipher"]["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
        // The secretbox tag (16 bytes) comes before the 6 encrypted bytes.
        assert_eq!(
            BASE64
                .decode(v["ciphertext"].as_str().unwrap())
                .unwrap()
                .len(),
            22
        );
    }

    #[test]
    fn malformed_envelopes() {
        let cases: &[(&str, &str)] = &[
            ("not json", "cosign key: not cosign's encrypted key JSON: expected ident at line 1 column 2"),
            (r#"{"kdf":{}}"#, "cosign key: not cosign's encrypted key JSON: missing field `name` at line 1 column 9"),
            (
                r#"{"kdf":{"name":"pbkdf2","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#,
                r#"cosign key: unsupported key derivation "pbkdf2" (expected "scrypt")"#,
            ),
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"aes","nonce":""},"ciphertext":""}"#,
                r#"cosign key: unsupported cipher "aes" (expected "nacl/secretbox")"#,
            ),
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":"AAAA"},"ciphertext":""}"#,
                "cosign key: the nonce is 3 bytes, not 24",
            ),
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":2,"r":1,"p":1},"salt":"!"},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#,
                "cosign key: not cosign's encrypted key JSON: a byte string that is not base64 at line 1 column 64",
            ),
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":2,"r":1,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAA"}"#,
                "cosign key: wrong password or corrupted key",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                decrypt(json.as_bytes(), b"pw").unwrap_err().to_string(),
                *want
            );
        }
    }

    /// go-securesystemslib's own vectors (encrypted/encrypted_test.go: `TestDecrypt`, and the
    /// N=65536 one of `kdfVectors`, which seals the JSON string of the same bytes): the same
    /// envelope format, sealing "reallyimportant" with the password "supersecret".
    #[test]
    fn go_securesystemslib_vectors() {
        let vectors: [(&str, &[u8]); 2] = [
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#,
                b"reallyimportant",
            ),
            (
                r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}"#,
                b"\"cmVhbGx5aW1wb3J0YW50\"",
            ),
        ];
        for (envelope, plaintext) in vectors {
            assert_eq!(
                &decrypt(envelope.as_bytes(), b"supersecret").unwrap()[..],
                plaintext
            );
            let e = decrypt(envelope.as_bytes(), b"supersecreT").unwrap_err();
            assert_eq!(e.to_string(), "cosign key: wrong password or corrupted key");
        }
    }
}
