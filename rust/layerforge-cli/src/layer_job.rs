//! The layer job document (`layerforge nix-layer --job JSON`) as the native command reads it.
//!
//! The format is python/layerforge/images/nix/layer_job_document.py's, its one writer (a plan's
//! job argv) and the reader of everything this command leaves to Python. The document holds
//! resolved values, so nothing here restates a table of the Python package: the layer's media
//! type is the document's, the compression is checked by the core's own rules, the
//! architecture by the core's ELF table, the perms are structured rules. What is checked here
//! is the document's form, the rules both readers hold; `tests/vectors/layer_job.json` holds
//! documents both read and documents both refuse (the unit tests below read the same file as
//! tests/test_nix_jobs.py).

use std::collections::HashSet;

use layerforge_core::compress::Compression;
use serde::{Deserialize, Deserializer, Serialize};

/// The `kind` of every layer job document.
pub const KIND: &str = "layerforge-layer-job";
/// The schema version this reads; any other is refused.
pub const VERSION: u32 = 1;
/// The largest uid or gid ((uid_t)-1 means "no id" to the kernel).
const MAX_ID: u32 = u32::MAX - 1;
/// A perm rule's mode: permission bits with setuid, setgid and sticky.
const MAX_MODE: u32 = 0o7777;
/// The largest mtime (a JSON document's integers are int64).
const MAX_MTIME: u64 = i64::MAX as u64;
const STORE_DIR: &str = "/nix/store/";

/// `{"kind": "layerforge-layer-job", "version": 1, "layers": [...]}`: the layers one
/// `nix-layer` process builds, in order, each into its own directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobDocument {
    /// What the document is: always [`KIND`].
    pub kind: String,
    /// The layers, in image order; at least one.
    pub layers: Vec<JobLayer>,
    /// The schema version: [`VERSION`].
    pub version: u32,
}

/// One layer of a document and the directory it is written into. Every field is required
/// (`null` where a value may be absent); fields are declared in the order of their JSON keys,
/// so that writing a document back gives its canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobLayer {
    /// The user whose /etc/passwd, /etc/group and home directory a root or snapshotter
    /// layer holds; null for none (always null for a store-path layer).
    #[serde(deserialize_with = "nullable")]
    pub account: Option<Account>,
    /// The architecture executables in the layer must be built for (an OCI name the core's
    /// ELF table knows); null to let any in.
    #[serde(deserialize_with = "nullable")]
    pub check_arch: Option<String>,
    /// How the layer blob is compressed.
    pub compression: LayerCompression,
    /// Store paths whose contents a root or snapshotter layer places at `/`.
    pub copy_to_root: Vec<String>,
    /// How copy-to-root entries are placed: as symlinks into the store or as copies.
    pub copy_to_root_mode: CopyToRootMode,
    /// What the layer holds.
    pub kind: LayerKind,
    /// The media type of the layer's descriptor (the compression's, resolved by the writer).
    pub media_type: String,
    /// The modification time of every entry, in seconds since the epoch.
    pub mtime: u64,
    /// The layer directory the layer is written into (blob and layer.json).
    pub out: String,
    /// Mode and owner rules for the store-path layer's entries, in order.
    pub perms: Vec<Perm>,
    /// The store paths of a store-path layer, or the closure a snapshotter layer mounts.
    pub store_paths: Vec<String>,
}

/// What a layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// Store paths as they are in the store, under /nix/store.
    StorePaths,
    /// Copy-to-root entries and the account's files.
    Root,
    /// nix-snapshotter's layer: a mountpoint per store path plus the root entries.
    Snapshotter,
}

/// How copy-to-root entries are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyToRootMode {
    /// Symlinks into the store path.
    Symlink,
    /// Copies of the store path's files.
    Copy,
}

/// The account a root layer creates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The group's id.
    pub gid: u32,
    /// The group's name.
    pub group: String,
    /// The user's id.
    pub uid: u32,
    /// The user's name.
    pub user: String,
}

/// The compression of a layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerCompression {
    /// `gzip`, `zstd` or `none`, as the core names them.
    pub algorithm: String,
    /// The algorithm's level; null for its default.
    #[serde(deserialize_with = "nullable")]
    pub level: Option<i32>,
}

/// A perm rule: entries whose image path the regex fully matches get this mode and owner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Perm {
    /// The owner's group id; given with `uid`, or null with it.
    #[serde(deserialize_with = "nullable")]
    pub gid: Option<u32>,
    /// The mode bits (at most 0o7777); null to keep each entry's.
    #[serde(deserialize_with = "nullable")]
    pub mode: Option<u32>,
    /// The regular expression, on one line.
    pub pattern: String,
    /// The owner's user id; given with `gid`, or null with it.
    #[serde(deserialize_with = "nullable")]
    pub uid: Option<u32>,
}

/// A field that must be present and may be null (serde would take a missing `Option` field
/// as null; with `deserialize_with` a missing field is an error).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// The document in `text`, if it is one in every rule of its format; else why not (the
/// message is for tests: the command hands a refused document to Python, which reports it).
pub fn parse(text: &str) -> Result<JobDocument, String> {
    let document: JobDocument = serde_json::from_str(text).map_err(|e| e.to_string())?;
    document.check()?;
    Ok(document)
}

impl JobDocument {
    /// The rules of the format beyond its types (layer_job_document.py holds the same).
    fn check(&self) -> Result<(), String> {
        if self.kind != KIND {
            return Err(format!("'kind' is {:?}, not {KIND:?}", self.kind));
        }
        if self.version != VERSION {
            return Err(format!("version {} is not {VERSION}", self.version));
        }
        if self.layers.is_empty() {
            return Err("'layers' is empty".to_string());
        }
        let mut outs = HashSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            layer.check().map_err(|e| format!("'layers[{i}].{e}"))?;
            if !outs.insert(layer.out.as_str()) {
                return Err(format!("'layers[{i}].out' is the out of another layer"));
            }
        }
        Ok(())
    }
}

impl JobLayer {
    /// The layer's rules; an error begins with the field's name (after `layers[i].`).
    fn check(&self) -> Result<(), String> {
        if !one_line(&self.out) {
            return Err(format!("out' {:?} is not a directory name", self.out));
        }
        if self.mtime > MAX_MTIME {
            return Err(format!("mtime' {} is beyond {MAX_MTIME}", self.mtime));
        }
        for (field, paths) in [
            ("storePaths", &self.store_paths),
            ("copyToRoot", &self.copy_to_root),
        ] {
            if let Some((j, p)) = paths.iter().enumerate().find(|(_, p)| !store_path(p)) {
                return Err(format!("{field}[{j}]' {p:?} is not a Nix store path"));
            }
        }
        for (j, perm) in self.perms.iter().enumerate() {
            perm.check().map_err(|e| format!("perms[{j}].{e}"))?;
        }
        Compression::parse(&self.compression.algorithm, self.compression.level)
            .map_err(|e| format!("compression' {e}"))?;
        if !one_line(&self.media_type) {
            return Err(format!(
                "mediaType' {:?} is not a media type",
                self.media_type
            ));
        }
        if let Some(arch) = &self.check_arch {
            if !one_line(arch) {
                return Err(format!("checkArch' {arch:?} is not an architecture"));
            }
        }
        self.check_kind()
    }

    /// What each kind of layer holds and takes.
    fn check_kind(&self) -> Result<(), String> {
        let root_entries = !self.copy_to_root.is_empty() || self.account.is_some();
        match self.kind {
            LayerKind::StorePaths if self.store_paths.is_empty() => {
                Err("storePaths' is empty".to_string())
            }
            LayerKind::StorePaths if root_entries => {
                Err("copyToRoot' or 'account' is given to a store-path layer".to_string())
            }
            LayerKind::Root if !self.store_paths.is_empty() => {
                Err("storePaths' is given to a root layer".to_string())
            }
            LayerKind::Root if !root_entries => {
                Err("copyToRoot' and 'account' are empty".to_string())
            }
            LayerKind::Root | LayerKind::Snapshotter if !self.perms.is_empty() => {
                Err("perms' apply to store-path layers only".to_string())
            }
            LayerKind::Snapshotter
                if self.compression.algorithm != "gzip"
                    || self.compression.level.is_some()
                    || self.check_arch.is_some() =>
            {
                Err("compression' of a snapshotter layer is gzip, unchecked".to_string())
            }
            _ => Ok(()),
        }
    }
}

impl Perm {
    fn check(&self) -> Result<(), String> {
        if self.pattern.is_empty() || self.pattern.contains('\n') {
            return Err(format!(
                "pattern' {:?} is not a one-line regex",
                self.pattern
            ));
        }
        if self.mode.is_some_and(|m| m > MAX_MODE) {
            return Err("mode' is beyond 0o7777".to_string());
        }
        if self.uid.is_some() != self.gid.is_some() {
            return Err("uid' and 'gid' are not given together".to_string());
        }
        if [self.uid, self.gid].iter().flatten().any(|&id| id > MAX_ID) {
            return Err(format!("uid' or 'gid' is beyond {MAX_ID}"));
        }
        if self.mode.is_none() && self.uid.is_none() {
            return Err("mode' and the ids are null".to_string());
        }
        Ok(())
    }
}

/// Not empty, and without a character Python's `has_control` finds (C0 and C1 controls,
/// DEL, the line and paragraph separators).
fn one_line(value: &str) -> bool {
    !value.is_empty()
        && !value.chars().any(|c| {
            (c as u32) < 0x20
                || ('\u{7f}'..'\u{a0}').contains(&c)
                || matches!(c, '\u{2028}' | '\u{2029}')
        })
}

/// `/nix/store/<hash>-<name>` exactly (store_path.py's grammar; the shared vectors hold the
/// two to one another).
pub fn store_path(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(STORE_DIR) else {
        return false;
    };
    let (Some(hash), Some(name)) = (
        rest.get(..32),
        rest.get(32..).and_then(|n| n.strip_prefix('-')),
    ) else {
        return false;
    };
    let hash_ok = hash
        .bytes()
        .all(|b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"eotu".contains(&b)));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b));
    hash_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/vectors/layer_job.json");

    /// A vector's document as `--job` is given it.
    fn text(case: &Value) -> String {
        match case.get("text").and_then(Value::as_str) {
            Some(text) => text.to_string(),
            None => case["document"].to_string(),
        }
    }

    fn cases(key: &str) -> Vec<Value> {
        let vectors: Value = serde_json::from_str(VECTORS).expect("the vectors parse");
        vectors[key].as_array().expect("a list of cases").clone()
    }

    #[test]
    fn valid_documents_read_back_to_their_canonical_text() {
        let valid = cases("valid");
        assert!(valid.len() > 5);
        for case in &valid {
            let name = case["name"].as_str().unwrap_or("?");
            let document = parse(&text(case)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let canonical = case["canonical"].as_str().expect("canonical text");
            assert_eq!(
                serde_json::to_string(&document).ok().as_deref(),
                Some(canonical),
                "{name}"
            );
            assert_eq!(parse(canonical).as_ref(), Ok(&document), "{name}");
        }
    }

    #[test]
    fn invalid_documents_are_refused() {
        let invalid = cases("invalid");
        assert!(invalid.len() > 30);
        for case in &invalid {
            let name = case["name"].as_str().unwrap_or("?");
            let by: Vec<&str> = case["refusedBy"]
                .as_array()
                .expect("refusedBy")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            match by.as_slice() {
                ["python", "native"] => assert!(parse(&text(case)).is_err(), "{name}"),
                // rules of root layers only Python holds; it builds those layers itself
                ["python"] => {
                    let document = parse(&text(case));
                    assert!(
                        document.is_err()
                            || document.is_ok_and(|d| d
                                .layers
                                .iter()
                                .all(|l| l.kind != LayerKind::StorePaths)),
                        "{name}"
                    );
                }
                other => panic!("{name}: refusedBy {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_nullable_field_is_refused() {
        let doc = r#"{"kind":"layerforge-layer-job","version":1,"layers":[{"account":null,"compression":{"algorithm":"gzip","level":null},"copyToRoot":[],"copyToRootMode":"symlink","kind":"store-paths","mediaType":"m","mtime":1,"out":"layer","perms":[],"storePaths":["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a"]}]}"#;
        assert!(parse(doc).is_err_and(|e| e.contains("missing field `checkArch`")));
        assert!(
            parse(&doc.replace(r#""account":null,"#, r#""account":null,"checkArch":null,"#))
                .is_ok()
        );
    }
}
