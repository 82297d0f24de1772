//! What kind of key a PKCS#8, SPKI or SEC1 structure holds, named for errors.

use p256::pkcs8::ObjectIdentifier;

use crate::{Error, Result};

/// id-ecPublicKey (RFC 5480).
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (P-256).
pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

const NAMES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.1", "RSA"),
    ("1.2.840.113549.1.1.10", "RSA-PSS"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
];

const CURVES: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.7", "P-256"),
    ("1.3.132.0.33", "P-224"),
    ("1.3.132.0.34", "P-384"),
    ("1.3.132.0.35", "P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.10045.3.1.1", "P-192"),
];

/// A name for the key algorithm `alg` with curve `curve` (for EC keys), e.g. "RSA",
/// "ECDSA P-384", "EC (curve 1.2.3.4)".
pub fn describe(alg: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> String {
    if alg == EC_PUBLIC_KEY {
        return describe_curve(curve);
    }
    let dotted = alg.to_string();
    match NAMES.iter().find(|(oid, _)| *oid == dotted) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("algorithm {dotted}"),
    }
}

/// "ECDSA P-384", "EC (curve 1.2.3.4)" or "EC (no named curve)".
pub fn describe_curve(curve: Option<ObjectIdentifier>) -> String {
    match curve {
        None => "EC (no named curve)".to_owned(),
        Some(c) => {
            let dotted = c.to_string();
            match CURVES.iter().find(|(oid, _)| *oid == dotted) {
                Some((_, name)) => format!("ECDSA {name}"),
                None => format!("EC (curve {dotted})"),
            }
        }
    }
}

/// The error for a key that is not ECDSA P-256.
pub fn unsupported(what: &str, kind: &str) -> Error {
    Error::input(format!(
        "{what}: {kind} keys are not supported (only ECDSA P-256)"
    ))
}

/// Ok when (`alg`, `curve`) is ECDSA P-256; otherwise the error naming what it is.
pub fn require_p256(
    what: &str,
    alg: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> Result<()> {
    if alg == EC_PUBLIC_KEY && curve == Some(P256) {
        Ok(())
    } else {
        Err(unsupported(what, &describe(alg, curve)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let oid = ObjectIdentifier::new_unwrap;
        assert_eq!(describe(oid("1.2.840.113549.1.1.1"), None), "RSA");
        assert_eq!(describe(oid("1.3.101.112"), None), "Ed25519");
        assert_eq!(
            describe(EC_PUBLIC_KEY, Some(oid("1.3.132.0.34"))),
            "ECDSA P-384"
        );
        assert_eq!(
            describe(EC_PUBLIC_KEY, Some(oid("1.2.3.4"))),
            "EC (curve 1.2.3.4)"
        );
        assert_eq!(describe(oid("1.2.3.4"), None), "algorithm 1.2.3.4");
        assert!(require_p256("k", EC_PUBLIC_KEY, Some(P256)).is_ok());
        assert_eq!(
            require_p256("k", EC_PUBLIC_KEY, None)
                .unwrap_err()
                .to_string(),
            "k: EC (no named curve) keys are not supported (only ECDSA P-256)"
        );
    }
}
