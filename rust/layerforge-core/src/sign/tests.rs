//! Round trips of the sign module, and keys from cosign's own test data
//! (tests/data/sign/README.md says where each comes from).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use p256::pkcs8::der::{pem as rfc7468, Decode};
use p256::pkcs8::PrivateKeyInfoRef;

use super::*;
use crate::Result;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sign/",
            $name
        ))
        .as_slice()
    };
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn err(r: Result<SigningKey>) -> String {
    r.unwrap_err().to_string()
}

/// The public key (uncompressed SEC1 point) that the PKCS#8 sealed in a cosign key carries,
/// as cosign wrote it when it made the pair.
fn embedded_public_point(cosign_pem: &[u8], password: &[u8]) -> Vec<u8> {
    let (label, envelope) = rfc7468::decode_vec(cosign_pem).unwrap();
    assert!(cosign_encrypted::LABELS.contains(&label));
    let pkcs8 = cosign_encrypted::decrypt(&envelope, password).unwrap();
    let info = PrivateKeyInfoRef::from_der(&pkcs8).unwrap();
    let ec = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
    ec.public_key.unwrap().to_vec()
}

fn public_point(key: &SigningKey) -> Vec<u8> {
    let vk = ecdsa::public_key_from_pem(key.public_key_pem().unwrap().as_bytes()).unwrap();
    vk.to_sec1_point(false).as_bytes().to_vec()
}

#[test]
fn cosign_fixtures_decrypt_to_the_keys_cosign_paired_them_with() {
    for (key, public) in [
        (
            fixture!("cosign-sigstore-label.key"),
            fixture!("cosign-sigstore-label.pub"),
        ),
        (
            fixture!("cosign-cosign-label.key"),
            fixture!("cosign-cosign-label.pub"),
        ),
    ] {
        let k = read_private_key(key, Some(b"hello")).unwrap();
        assert_eq!(k.public_key_pem().unwrap(), text(public));
        assert_eq!(public_point(&k), embedded_public_point(key, b"hello"));
        let sig = k.sign(b"payload").unwrap();
        assert!(verify_signature(public, b"payload", &sig).unwrap());
    }
}

#[test]
fn cosign_fixtures_refuse_other_passwords() {
    for (key, password) in [
        (fixture!("cosign-sigstore-label.key"), b"Hello".as_slice()),
        (fixture!("cosign-cosign-label.key"), b"".as_slice()),
        (fixture!("cosign-ci.key"), b"hello".as_slice()),
    ] {
        let e = err(read_private_key(key, Some(password)));
        assert_eq!(e, "cosign key: wrong password or corrupted key");
    }
    let e = err(read_private_key(
        fixture!("cosign-sigstore-label.key"),
        None,
    ));
    assert_eq!(e, "cosign key: the key is encrypted: a password is needed");
}

#[test]
fn cosign_key_sealing_sec1_is_refused_as_cosign_does() {
    let e = err(read_private_key(
        fixture!("cosign-sec1-inside.key"),
        Some(b"hello"),
    ));
    assert!(
        e.starts_with("cosign key: malformed PKCS#8 private key: "),
        "{e}"
    );
}

#[test]
fn unencrypted_openssl_keys() {
    let sec1 = fixture!("sec1-p256.pem");
    let k = read_private_key(sec1, None).unwrap();
    assert_eq!(k.public_key_pem().unwrap(), text(fixture!("sec1-p256.pub")));
    // `openssl ecparam -genkey` writes the curve's parameters first; a password is ignored.
    let with_params = [
        b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
            .as_slice(),
        sec1,
    ]
    .concat();
    let k = read_private_key(&with_params, Some(b"unused")).unwrap();
    assert_eq!(k.public_key_pem().unwrap(), text(fixture!("sec1-p256.pub")));
    let k = read_private_key(fixture!("pkcs8-p256.pem"), None).unwrap();
    assert_eq!(
        k.public_key_pem().unwrap(),
        text(fixture!("pkcs8-p256.pub"))
    );
    // The same key sealed by cosign (which refuses it) and in the clear.
    let crlf = text(sec1).replace('\n', "\r\n");
    let k = read_private_key(crlf.as_bytes(), None).unwrap();
    assert_eq!(k.public_key_pem().unwrap(), text(fixture!("sec1-p256.pub")));
}

#[test]
fn keys_that_are_not_p256_are_refused_by_name() {
    for (pem, want) in [
        (
            fixture!("sec1-p384.pem"),
            "private key: ECDSA P-384 keys are not supported (only ECDSA P-256)",
        ),
        (
            fixture!("pkcs8-rsa.pem"),
            "private key: RSA keys are not supported (only ECDSA P-256)",
        ),
        (
            fixture!("pkcs1-rsa.pem"),
            "private key: RSA keys are not supported (only ECDSA P-256)",
        ),
        (
            fixture!("pkcs8-ed25519.pem"),
            "private key: Ed25519 keys are not supported (only ECDSA P-256)",
        ),
    ] {
        assert_eq!(err(read_private_key(pem, None)), want);
    }
    for (pem, want) in [
        (
            fixture!("sec1-p384.pub"),
            "public key: ECDSA P-384 keys are not supported (only ECDSA P-256)",
        ),
        (
            fixture!("pkcs8-rsa.pub"),
            "public key: RSA keys are not supported (only ECDSA P-256)",
        ),
    ] {
        assert_eq!(
            verify_signature(pem, b"m", b"sig").unwrap_err().to_string(),
            want
        );
    }
}

#[test]
fn bad_pem_is_a_one_line_error() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "private key: no private key PEM block found"),
        (b"garbage", "private key: no private key PEM block found"),
        (fixture!("sec1-p256.pub"), "private key: the PEM holds a PUBLIC KEY, not a private key"),
        (
            b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH\n",
            "private key: the PRIVATE KEY PEM block has no END line",
        ),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "private key: unsupported PEM block OPENSSH PRIVATE KEY (expected PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY)",
        ),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "private key: malformed PKCS#8 private key: ",
        ),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "cosign key: not cosign's encrypted key JSON: expected ident at line 1 column 2",
        ),
    ];
    for (pem, want) in cases {
        let e = err(read_private_key(pem, Some(b"pw")));
        assert!(e.starts_with(want), "{e:?} does not start with {want:?}");
        assert!(!e.contains('\n'), "{e:?}");
    }
    let e = verify_signature(fixture!("sec1-p256.pem"), b"m", b"s")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "public key: expected a PUBLIC KEY PEM block, found EC PRIVATE KEY"
    );
    let e = verify_signature(b"", b"m", b"s").unwrap_err().to_string();
    assert_eq!(e, "public key: no PEM block found");
}

#[test]
fn sign_verify_round_trip() {
    let key = read_private_key(fixture!("pkcs8-p256.pem"), None).unwrap();
    let public = key.public_key_pem().unwrap();
    let sig = key.sign(b"message").unwrap();
    assert_eq!(
        sig,
        key.sign(b"message").unwrap(),
        "RFC 6979 signatures are deterministic"
    );
    assert_eq!(sig[0], 0x30, "ASN.1 DER SEQUENCE");
    assert!(verify_signature(public.as_bytes(), b"message", &sig).unwrap());
    // Another message, a tampered signature, a malformed one, another key: false.
    assert!(!verify_signature(public.as_bytes(), b"messagE", &sig).unwrap());
    let mut tampered = sig.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!verify_signature(public.as_bytes(), b"message", &tampered).unwrap());
    assert!(!verify_signature(public.as_bytes(), b"message", &sig[..sig.len() - 1]).unwrap());
    assert!(!verify_signature(public.as_bytes(), b"message", b"").unwrap());
    assert!(!verify_signature(fixture!("sec1-p256.pub"), b"message", &sig).unwrap());
    assert!(!verify_signature(fixture!("cosign-ci.pub"), b"message", &sig).unwrap());
}

/// RFC 6979, A.2.5: P-256 with SHA-256, message "sample".
#[test]
fn rfc6979_vector() {
    let x = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    let secret = p256::SecretKey::from_slice(&hex(x)).unwrap();
    let key = SigningKey::from_secret_key(&secret);
    let sig = p256::ecdsa::Signature::from_der(&key.sign(b"sample").unwrap()).unwrap();
    let r = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
    let s = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
    assert_eq!(sig.to_bytes().to_vec(), [hex(r), hex(s)].concat());
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn generated_pair_reads_back_with_its_password_only() {
    let (private, public) = generate_cosign_key_pair(b"pw").unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(private.ends_with("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(private.lines().all(|l| l.len() <= 64));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let key = read_private_key(private.as_bytes(), Some(b"pw")).unwrap();
    assert_eq!(key.public_key_pem().unwrap(), public);
    assert_eq!(
        public_point(&key),
        embedded_public_point(private.as_bytes(), b"pw")
    );
    let sig = key.sign(b"m").unwrap();
    assert!(verify_signature(public.as_bytes(), b"m", &sig).unwrap());
    let e = err(read_private_key(private.as_bytes(), Some(b"px")));
    assert_eq!(e, "cosign key: wrong password or corrupted key");

    // The envelope is what cosign writes: N=65536 r=8 p=1, 32-byte salt, 24-byte nonce.
    let (_, envelope) = rfc7468::decode_vec(private.as_bytes()).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    assert_eq!(v["kdf"]["name"], "scrypt");
    assert_eq!(
        v["kdf"]["params"],
        serde_json::json!({"N": 65536, "r": 8, "p": 1})
    );
    assert_eq!(v["cipher"]["name"], "nacl/secretbox");

    // A flipped bit anywhere in the ciphertext is caught by the secretbox tag.
    let mut ct = BASE64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
    ct[40] ^= 0x10;
    v["ciphertext"] = BASE64.encode(&ct).into();
    let tampered = rfc7468::encode_string(
        cosign_encrypted::SIGSTORE_LABEL,
        rfc7468::LineEnding::LF,
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let e = err(read_private_key(tampered.as_bytes(), Some(b"pw")));
    assert_eq!(e, "cosign key: wrong password or corrupted key");
}

#[test]
fn empty_password_is_a_password() {
    let key = read_private_key(fixture!("pkcs8-p256.pem"), None).unwrap();
    let sealed = cosign_encrypted::encrypt_pem(
        key.to_pkcs8_der().unwrap().as_bytes(),
        b"",
        ScryptParams {
            n: 1024,
            r: 8,
            p: 1,
        },
    )
    .unwrap();
    let back = read_private_key(sealed.as_bytes(), Some(b"")).unwrap();
    assert_eq!(
        back.public_key_pem().unwrap(),
        key.public_key_pem().unwrap()
    );
    let e = err(read_private_key(sealed.as_bytes(), None));
    assert_eq!(e, "cosign key: the key is encrypted: a password is needed");
}

#[test]
fn no_key_material_in_debug_or_errors() {
    let key = read_private_key(fixture!("pkcs8-p256.pem"), None).unwrap();
    assert_eq!(format!("{key:?}"), "SigningKey(ECDSA P-256)");
    let e = err(read_private_key(
        fixture!("cosign-sigstore-label.key"),
        Some(b"hunter2-secret"),
    ));
    assert!(!e.contains("hunter2"));
}
