//! Randomness from the operating system (keys, salts, nonces).

use crate::{Error, Result};

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
