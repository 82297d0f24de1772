//! The push receipts the Python push writes (`python/layerforge/registry/receipt.py`, where
//! their fields are described): found by the sha256 of the command line, read as a bounded
//! regular file private to this user (a receipt someone else could have written is never
//! read, see [`read_private`]), and used only when every field has the expected shape and it
//! names this very push: its key and command line, the layout directory `SOURCE` names, the
//! registry and repository `TARGET` names and exactly the tags the command line names. Nothing
//! here knows the push's rules (tag and repository grammar, layout references, manifest
//! graphs, referrers): the receipt states their outcome, this command checks that it is the
//! outcome of its own command line and that it still holds.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::files::read_private;

const KIND: &str = "layerforge-push-receipt";
const VERSION: u64 = 2;
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
    /// `--record FILE`: the publish record and the entry an unchanged re-push adds to it.
    pub record: Option<(PathBuf, Value)>,
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
    let root = cache_dir()?;
    let key = key(args, timeout);
    let path = root.join("push-receipts").join(format!("{key}.json"));
    let data = read_private(&root, &path, MAX_RECEIPT)?;
    let doc: Value = serde_json::from_slice(&data).ok()?;
    parse(&doc, args, &key)
}

/// What a command line asks a push for, as far as a receipt must name it: `SOURCE`, `TARGET`,
/// the `--tag` values and the `--record` file. Only the options of `layerforge push` spelled
/// in full (`--tag T`, `--tag=T`, `--insecure`, `--jobs`, `--chunk-size`, `--retries`,
/// `--record`) are read, and `--` ends
/// them as argparse does (every later argument is a positional: what `pants publish` passes);
/// any other argument starting with `-` (an abbreviation, `-v`) leaves the push to Python.
struct Asked<'a> {
    source: &'a str,
    target: &'a str,
    tags: Vec<&'a str>,
    record: Option<&'a str>,
}

fn asked(args: &[OsString]) -> Option<Asked<'_>> {
    let mut positional = Vec::new();
    let mut tags = Vec::new();
    let mut record = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if arg == "--" {
            for arg in rest.by_ref() {
                positional.push(arg.to_str()?);
            }
            break;
        }
        if arg == "-" || !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg, None),
        };
        match (name, inline) {
            ("--insecure", None) => {}
            ("--tag" | "--jobs" | "--chunk-size" | "--retries" | "--record", _) => {
                let value = match inline {
                    Some(value) => value,
                    None => rest.next()?.to_str()?,
                };
                if name == "--tag" {
                    tags.push(value);
                } else if name == "--record" {
                    record = Some(value);
                }
            }
            _ => return None,
        }
    }
    match positional[..] {
        [source, target] => Some(Asked {
            source,
            target,
            tags,
            record,
        }),
        _ => None,
    }
}

/// `Some(None)` when `arg` is `name`, `Some(Some(rest))` when it is `name:rest`, else `None`.
fn after<'a>(arg: &'a str, name: &str) -> Option<Option<&'a str>> {
    match arg.strip_prefix(name)? {
        "" => Some(None),
        rest => rest.strip_prefix(':').map(Some),
    }
}

/// Whether the receipt's layout directory, registry, repository and tags are the ones `asked`
/// names: `SOURCE` is the directory, alone or followed by `:` and a reference; `TARGET` is
/// `REGISTRY/REPOSITORY`, alone or followed by `:` and a tag; the tags are the target's and
/// the `--tag` values, no more and no fewer (a command line naming none is left to Python).
fn names_the_push(
    asked: &Asked<'_>,
    layout: &str,
    registry: &str,
    repository: &str,
    tags: &[String],
) -> bool {
    if layout.is_empty() || registry.contains('/') || repository.contains(':') {
        return false;
    }
    let (Some(_), Some(target_tag)) = (
        after(asked.source, layout),
        after(asked.target, &format!("{registry}/{repository}")),
    ) else {
        return false;
    };
    let wanted: BTreeSet<&str> = target_tag
        .into_iter()
        .chain(asked.tags.iter().copied())
        .collect();
    let named: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    !wanted.is_empty() && wanted == named
}

fn parse(doc: &Value, args: &[OsString], key: &str) -> Option<Receipt> {
    if doc.get("kind")?.as_str()? != KIND || doc.get("version")?.as_u64()? != VERSION {
        return None;
    }
    // The key names this command line; the receipt must say so too.
    let argv: Vec<&str> = strings(doc.get("argv")?)?;
    if doc.get("key")?.as_str()? != key
        || argv.len() != args.len()
        || argv.iter().zip(args).any(|(a, b)| OsStr::new(a) != b)
    {
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
    let layout = text("layout")?;
    // The record this command line names, and the entry the receipt holds for it (both or neither).
    let record = match (asked(args)?.record, doc.get("record")) {
        (None, None | Some(Value::Null)) => None,
        (Some(path), Some(r))
            if r.get("path")?.as_str()? == path && r.get("entry")?.is_object() =>
        {
            Some((PathBuf::from(path), r.get("entry")?.clone()))
        }
        _ => return None,
    };
    let registry = request_safe(doc.get("registry")?.as_str()?)?;
    let repository = request_safe(doc.get("repository")?.as_str()?)?;
    if accept.chars().any(char::is_control)
        || !names_the_push(&asked(args)?, &layout, &registry, &repository, &tags)
    {
        return None;
    }
    let layout = PathBuf::from(layout);
    Some(Receipt {
        registry,
        repository,
        tags,
        root: digest(doc.get("root")?.as_str()?)?.to_string(),
        index_path: layout.join("index.json"),
        index_digest: digest(index.get("digest")?.as_str()?)?.to_string(),
        blob_dir: layout.join("blobs").join("sha256"),
        blobs,
        documents,
        referrers,
        accept,
        stderr: lines("stderr")?,
        stdout: lines("stdout")?,
        record,
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

    const ARGV: [&str; 4] = ["l:1", "127.0.0.1:5000/team/app:1.0", "--tag", "stable"];

    fn os_args(argv: &[&str]) -> Vec<OsString> {
        argv.iter().map(OsString::from).collect()
    }

    fn receipt(argv: &[&str]) -> Value {
        let d = format!("sha256:{}", "a".repeat(64));
        serde_json::json!({
            "kind": KIND, "version": 2, "key": key(&os_args(argv), None), "argv": argv, "layout": "l",
            "registry": "127.0.0.1:5000", "repository": "team/app", "tags": ["1.0", "stable"], "root": d,
            "index": {"digest": d}, "blobs": {d.clone(): 3}, "documents": [d], "referrers": [],
            "accept": "application/vnd.oci.image.manifest.v1+json",
            "report": {"stderr": ["blobs: ..."], "stdout": ["127.0.0.1:5000/team/app:1.0 x (unchanged)"]},
        })
    }

    fn parsed(doc: &Value, argv: &[&str]) -> Option<Receipt> {
        let args = os_args(argv);
        parse(doc, &args, &key(&args, None))
    }

    #[test]
    fn the_key_is_the_python_one() {
        // receipt_key(["l:1", "127.0.0.1:5000/a/b:1"], {}) of python/layerforge/registry/receipt.py
        let args = os_args(&["l:1", "127.0.0.1:5000/a/b:1"]);
        assert_eq!(
            key(&args, None),
            "7fef77c214394b717b2e149caa944ee9c3378bf1551d3d2b5754000557a33434"
        );
        assert_ne!(key(&args, Some(OsStr::new("5"))), key(&args, None));
    }

    #[test]
    fn a_receipt_names_this_push_or_is_not_used() {
        let r = parsed(&receipt(&ARGV), &ARGV).expect("the receipt of this push");
        assert_eq!(r.index_path, Path::new("l/index.json"));
        assert_eq!(r.blob_dir, Path::new("l/blobs/sha256"));
        // Another push's receipt, as it is or under this one's key.
        assert!(parsed(&receipt(&["l:1", "127.0.0.1:5000/team/app:2"]), &ARGV).is_none());
        let mut doc = receipt(&ARGV);
        doc["key"] = key(&os_args(&["l:1", "x"]), None).into();
        assert!(parsed(&doc, &ARGV).is_none(), "another key");
        // The same command line, but the receipt sends the check elsewhere.
        let elsewhere: [(&str, Value); 9] = [
            ("registry", "127.0.0.1:6000".into()),
            ("registry", "127.0.0.1:5000/team".into()),
            ("repository", "team/other".into()),
            ("repository", "team".into()),
            ("tags", serde_json::json!(["1.0"])),
            ("tags", serde_json::json!(["1.0", "stable", "extra"])),
            ("tags", serde_json::json!(["2.0", "stable"])),
            ("layout", "other".into()),
            ("layout", "".into()),
        ];
        for (field, value) in elsewhere {
            let mut doc = receipt(&ARGV);
            doc[field] = value.clone();
            assert!(parsed(&doc, &ARGV).is_none(), "{field} {value}");
        }
        let mut doc = receipt(&ARGV);
        doc["layout"] = "l:1".into();
        assert!(
            parsed(&doc, &ARGV).is_some(),
            "a layout whose name holds ':' is named as given"
        );
        let mut doc = receipt(&["l:1", "127.0.0.1:5000/team/app:1.0", "--tag=stable"]);
        doc["repository"] = "team/app:1.0".into();
        doc["tags"] = serde_json::json!(["stable"]);
        assert!(parsed(
            &doc,
            &["l:1", "127.0.0.1:5000/team/app:1.0", "--tag=stable"]
        )
        .is_none());
    }

    #[test]
    fn the_command_line_is_read_in_its_plain_spellings_only() {
        let ok = [
            &["l", "127.0.0.1:5000/team/app:1.0", "--tag", "stable"][..],
            &[
                "--tag=stable",
                "l",
                "--jobs",
                "2",
                "127.0.0.1:5000/team/app:1.0",
                "--insecure",
            ],
            &[
                "l",
                "--retries=3",
                "--chunk-size",
                "1MiB",
                "127.0.0.1:5000/team/app",
                "--tag",
                "1.0",
                "--tag",
                "stable",
            ],
            &["--tag=stable", "--", "l", "127.0.0.1:5000/team/app:1.0"],
        ];
        for argv in ok {
            let mut doc = receipt(argv);
            doc["layout"] = "l".into();
            assert!(parsed(&doc, argv).is_some(), "{argv:?}");
        }
        let refused = [
            &["l", "127.0.0.1:5000/team/app:1.0", "--ta", "stable"][..],
            &["l", "127.0.0.1:5000/team/app:1.0", "-v", "--tag", "stable"],
            &["l", "127.0.0.1:5000/team/app:1.0", "--tag"],
            &["--", "--tag=stable", "l", "127.0.0.1:5000/team/app:1.0"],
            &["l", "127.0.0.1:5000/team/app:1.0", "extra"],
            &["l", "127.0.0.1:5000/team/app"],
        ];
        for argv in refused {
            let mut doc = receipt(argv);
            doc["layout"] = "l".into();
            doc["tags"] = serde_json::json!(["1.0", "stable", "latest"]);
            assert!(parsed(&doc, argv).is_none(), "{argv:?}");
        }
    }

    #[test]
    fn receipts_of_odd_shapes_are_not_used() {
        let hostile: [(&str, Value); 8] = [
            ("version", 1.into()),
            ("tags", serde_json::json!(["1.0\r\nX-Evil: 1", "stable"])),
            ("tags", serde_json::json!([])),
            ("repository", "team/../../v2/other".into()),
            ("registry", "evil host".into()),
            ("root", "sha256:../../etc/passwd".into()),
            ("accept", "a\r\nX-Evil: 1".into()),
            (
                "report",
                serde_json::json!({"stderr": ["\u{1b}]0;owned\u{7}"], "stdout": []}),
            ),
        ];
        for (field, value) in hostile {
            let mut doc = receipt(&ARGV);
            doc[field] = value;
            assert!(parsed(&doc, &ARGV).is_none(), "{field}");
        }
        let mut doc = receipt(&ARGV);
        doc["blobs"] = serde_json::json!({"sha256:../../x": 1});
        assert!(parsed(&doc, &ARGV).is_none());
    }
}
