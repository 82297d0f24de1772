//! Destination paths inside an image: normalisation and ordering.

use crate::error::{Error, Result};

/// Normalise a destination path: drop leading `/`, empty and `.` components; refuse `..`
/// (a layer must never write outside the image root) and NUL bytes. The image root is `""`.
pub fn normalize_dest(dest: &str) -> Result<String> {
    if dest.contains('\0') {
        return Err(Error::input(format!(
            "destination path {dest:?} contains a NUL byte"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in dest.split('/') {
        match comp {
            "" | "." => continue,
            ".." => {
                return Err(Error::input(format!(
                    "destination path '{dest}' escapes the image root ('..' is not allowed)"
                )))
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Join a normalised parent and a single name.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The key entries are sorted by: the path compared component by component
/// (`a/b` sorts before `a-b`, so a directory is directly followed by its contents,
/// as with `tar --sort=name`). Replacing `/` by NUL, which no name can hold, makes a
/// plain byte comparison component-wise.
pub fn sort_key(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|b| if b == b'/' { 0 } else { b })
        .collect()
}

/// The strict ancestors of a normalised path, outermost first (`a/b/c` -> `a`, `a/b`).
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalize_dest("/usr//bin/./x").unwrap(), "usr/bin/x");
        assert_eq!(normalize_dest("/").unwrap(), "");
        assert_eq!(normalize_dest("").unwrap(), "");
        assert_eq!(normalize_dest("a/").unwrap(), "a");
    }

    #[test]
    fn refuses_escape_and_nul() {
        let e = normalize_dest("a/../../etc").unwrap_err().to_string();
        assert!(e.contains("escapes the image root"), "{e}");
        assert!(normalize_dest("a\0b").is_err());
    }

    #[test]
    fn component_order() {
        let mut v = vec!["a-b", "a/b", "a", "a/b/c", "ab"];
        v.sort_by_key(|p| sort_key(p));
        assert_eq!(v, vec!["a", "a/b", "a/b/c", "a-b", "ab"]);
    }

    #[test]
    fn lists_ancestors() {
        let a: Vec<_> = ancestors("a/b/c").collect();
        assert_eq!(a, vec!["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
