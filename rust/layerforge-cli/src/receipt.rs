//! The push receipts the Python push writes (`python/layerforge/registry/receipt.py`, where
//! their fields are described): found by the sha256 of the command line, read as a bounded
//! regular file, and used only when every field has the expected shape. Nothing here knows
//! the push's rules (tag and repository grammar, layout references, manifest graphs,
//! referrers): the receipt states their outcome and this command checks that it still holds.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::files::read_regular;

const KIND: &str = "layerforge-push-receipt";
const VERSION: u64 = 1;
/// Receipts list every blob of an image; far more than any real one.
const MAX_RECEIPT: u64 = 64 << 20;

/// A referrer of the image and, where the registry has no referrers API, the tag of the
/// referrers index and that index's digest.
pub type Referrer = (String, Option<(String, String)>);

pub struct Receipt {
    pub registry: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub root: String,
    pub index_path: PathBuf,
    pub index_digest: String,
    pub blob_dir: PathBuf,
    pub blobs: Vec<(String, u64)>,
    pub documents: Vec<String>,
    pub referrers: Vec<Referrer>,
    pub accept: String,
    pub stderr: Vec<String>,
    pub stdout: Vec<String>,
}

/// sha256 (hex) of `KIND NUL VERSION NUL arg NUL ... NUL timeout`, as the Python
/// push computes it.
pub fn key(args: &[OsString], timeout: Option<&OsStr>) -> String {
    let mut h = Sha256::new();
    h.update(KIND.as_bytes());
    h.update(b"\0");
    h.update(VERSION.to_string().as_bytes());
    for a in args {
        h.update(b"\0");
        h.update(a.as_bytes());
    }
    h.update(b"\0");
    h.update(timeout.map_or(&[][..], OsStr::as_bytes));
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `$LAYERFORGE_CACHE_DIR`, else `$XDG_CACHE_HOME/layerforge`, else `~/.cache/layerforge`
/// (python/layerforge/cache_dir.py).
fn cache_dir() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("LAYERFORGE_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = match set("XDG_CACHE_HOME") {
        Some(base) => PathBuf::from(base),
        None => PathBuf::from(set("HOME")?).join(".cache"),
    };
    Some(base.join("layerforge"))
}

/// The receipt of this very command line, if the Python push left one.
pub fn load(args: &[OsString], timeout: Option<&OsStr>) -> Option<Receipt> {
    let path = cache_dir()?
        .join("push-receipts")
        .join(format!("{}.json", key(args, timeout)));
    let data = read_regular(&path, MAX_RECEIPT, None)?;
    let doc: Value = serde_json::from_slice(&data).ok()?;
    parse(&doc, args)
}

fn parse(doc: &Value, args: &[OsString]) -> Option<Receipt> {
    if doc.get("kind")?.as_str()? != KIND || doc.get("version")?.as_u64()? != VERSION {
        return None;
    }
    // The key names this command line; the receipt must say so too.
    let argv: Vec<&str> = strings(doc.get("argv")?)?;
    if argv.len() != args.len() || argv.iter().zip(args).any(|(a, b)| OsStr::new(a) != b) {
        return None;
    }
    let text = |name: &str| doc.get(name)?.as_str().map(str::to_string);
    let index = doc.get("index")?;
    let blobs = doc
        .get("blobs")?
        .as_object()?
        .iter()
        .map(|(d, size)| Some((digest(d)?.to_string(), size.as_u64()?)))
        .collect::<Option<Vec<_>>>()?;
    let documents = strings(doc.get("documents")?)?
        .into_iter()
        .map(|d| digest(d).map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    let referrers = doc
        .get("referrers")?
        .as_array()?
        .iter()
        .map(|r| {
            let listing = match r.get("listing")? {
                Value::Null => None,
                l => Some((
                    request_safe(l.get("tag")?.as_str()?)?,
                    digest(l.get("digest")?.as_str()?)?.to_string(),
                )),
            };
            Some((digest(r.get("digest")?.as_str()?)?.to_string(), listing))
        })
        .collect::<Option<Vec<_>>>()?;
    let report = doc.get("report")?;
    let lines = |name: &str| -> Option<Vec<String>> {
        strings(report.get(name)?)?
            .into_iter()
            .map(|l| (!l.chars().any(char::is_control)).then(|| l.to_string()))
            .collect()
    };
    let tags = strings(doc.get("tags")?)?
        .into_iter()
        .map(request_safe)
        .collect::<Option<Vec<_>>>()?;
    let accept = text("accept")?;
    if tags.is_empty() || accept.chars().any(char::is_control) {
        return None;
    }
    Some(Receipt {
        registry: request_safe(doc.get("registry")?.as_str()?)?,
        repository: request_safe(doc.get("repository")?.as_str()?)?,
        tags,
        root: digest(doc.get("root")?.as_str()?)?.to_string(),
        index_path: PathBuf::from(index.get("path")?.as_str()?),
        index_digest: digest(index.get("digest")?.as_str()?)?.to_string(),
        blob_dir: PathBuf::from(text("blob_dir")?),
        blobs,
        documents,
        referrers,
        accept,
        stderr: lines("stderr")?,
        stdout: lines("stdout")?,
    })
}

fn strings(v: &Value) -> Option<Vec<&str>> {
    v.as_array()?.iter().map(Value::as_str).collect()
}

/// `sha256:` and 64 lower-case hex digits (blob file names are built from them).
fn digest(value: &str) -> Option<&str> {
    let hex = value.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(value)
}

/// Text that can go into a request line or a Host header as it is: visible ASCII without
/// the characters that would change a URL's meaning, and no `..` path segment.
fn request_safe(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b':' | b'[' | b']')
        })
        && !value.split('/').any(|s| s == ".." || s == ".");
    ok.then(|| value.to_string())
}

/// The blob file of a checked digest.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join(digest.trim_start_matches("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(argv: &[&str]) -> Value {
        let d = format!("sha256:{}", "a".repeat(64));
        serde_json::json!({
            "kind": KIND, "version": 1, "argv": argv,
            "registry": "127.0.0.1:5000", "repository": "team/app", "tags": ["1.0"], "root": d,
            "index": {"path": "/l/index.json", "digest": d}, "blob_dir": "/l/blobs/sha256",
            "blobs": {d.clone(): 3}, "documents": [d], "referrers": [],
            "accept": "application/vnd.oci.image.manifest.v1+json",
            "report": {"stderr": ["blobs: ..."], "stdout": ["127.0.0.1:5000/team/app:1.0 x (unchanged)"]},
        })
    }

    #[test]
    fn the_key_is_the_python_one() {
        // receipt_key(["l:1", "127.0.0.1:5000/a/b:1"], {}) of python/layerforge/registry/receipt.py
        let args: Vec<OsString> = ["l:1", "127.0.0.1:5000/a/b:1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            key(&args, None),
            "2d3a362ecfcef70dd0a0ee84286d9c07672ffe0942a003b66b7555377f0500ff"
        );
        assert_ne!(key(&args, Some(OsStr::new("5"))), key(&args, None));
    }

    #[test]
    fn receipts_of_other_command_lines_or_odd_shapes_are_not_used() {
        let args: Vec<OsString> = ["l:1", "x"].iter().map(OsString::from).collect();
        assert!(parse(&receipt(&["l:1", "x"]), &args).is_some());
        assert!(parse(&receipt(&["l:1", "y"]), &args).is_none());
        let hostile: [(&str, Value); 7] = [
            ("version", 2.into()),
            ("tags", serde_json::json!(["1.0\r\nX-Evil: 1"])),
            ("tags", serde_json::json!([])),
            ("repository", "team/../../v2/other".into()),
            ("registry", "evil host".into()),
            ("root", "sha256:../../etc/passwd".into()),
            (
                "report",
                serde_json::json!({"stderr": ["\u{1b}]0;owned\u{7}"], "stdout": []}),
            ),
        ];
        for (field, value) in hostile {
            let mut doc = receipt(&["l:1", "x"]);
            doc[field] = value;
            assert!(parse(&doc, &args).is_none(), "{field}");
        }
        let mut doc = receipt(&["l:1", "x"]);
        doc["blobs"] = serde_json::json!({"sha256:../../x": 1});
        assert!(parse(&doc, &args).is_none());
    }
}
