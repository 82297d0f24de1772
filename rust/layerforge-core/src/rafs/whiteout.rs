//! OCI whiteouts as the Nydus conversion reads them from layer tars (the image-spec's
//! "Whiteouts" section, what overlayfs and containerd apply): `.wh.NAME` hides `NAME` of
//! the lower layers, `.wh..wh..opq` hides everything the lower layers have in its directory,
//! and neither reaches the converted tree. A whiteout of nothing, `.` or `..` is refused.
//! (The Python side's rules for unpacking are `layerforge.layout.whiteouts`.)

use crate::error::{Error, Result};

pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";

/// What a whiteout entry hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// The lower layers' contents of the entry's directory.
    Opaque,
    /// The lower layers' entry of this name in the entry's directory.
    Of(&'a [u8]),
}

/// The whiteout a name is, if it is one.
pub fn classify(name: &[u8]) -> Option<Whiteout<'_>> {
    if name == OPAQUE_WHITEOUT {
        Some(Whiteout::Opaque)
    } else {
        name.strip_prefix(WHITEOUT_PREFIX).map(Whiteout::Of)
    }
}

/// Refuse a path component that whites out nothing, `.` or `..`.
pub fn check_component(c: &[u8]) -> Result<()> {
    if let Some(Whiteout::Of(rest @ (b"" | b"." | b".."))) = classify(c) {
        return Err(Error::input(format!(
            "whiteout of '{}' names no entry",
            String::from_utf8_lossy(rest)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify(b".wh..wh..opq"), Some(Whiteout::Opaque));
        assert_eq!(classify(b".wh.a"), Some(Whiteout::Of(b"a")));
        assert_eq!(classify(b".wh..wh.plnk"), Some(Whiteout::Of(b".wh.plnk")));
        assert_eq!(classify(b"a.wh.b"), None);
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
        assert!(check_component(b".wh..wh..opq").is_ok());
        assert!(check_component(b"plain").is_ok());
    }
}
