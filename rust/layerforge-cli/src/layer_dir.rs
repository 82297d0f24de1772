//! A layer directory's `layer.json`, as the native command writes it for the layers it builds.
//!
//! The format is python/layerforge/layers/layer_dir.py's, its owner (`write_layer_dir` writes
//! it, `read_layer_dir` reads it): canonical JSON (sorted keys, no white space, UTF-8) of the
//! layer's descriptor, diff_id and uncompressed size. `tests/vectors/layer_json.json` holds
//! both writers to the same bytes (the unit test below reads it, as tests/test_nix_jobs.py does).

use std::collections::BTreeMap;

use serde::Serialize;

/// What `layer.json` holds. Fields are declared in the order of their JSON keys, so that
/// serde writes the canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerJson {
    /// The layer's descriptor, as the image manifest lists it.
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// Size of the uncompressed tar, in bytes.
    pub uncompressed_size: u64,
}

/// An OCI descriptor of a layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The descriptor's annotations; left out when there are none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    /// The layer's media type.
    pub media_type: String,
    /// The blob's size, in bytes.
    pub size: u64,
}

impl LayerJson {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| format!("layer.json: {e}"))
    }
}

/// The file describing a layer directory's blob (`LAYER_JSON` of
/// python/layerforge/layers/layer_dir.py).
pub const LAYER_JSON: &str = "layer.json";
/// The file beside `layer.json` saying what the layer holds (`CONTENTS_JSON` of
/// python/layerforge/layers/layer_dir.py).
pub const CONTENTS_JSON: &str = "contents.json";
/// `MAX_FILES` of python/layerforge/record/build.py: other paths listed per layer at most.
const MAX_FILES: usize = 10000;
/// `MAX_COMPONENTS` of python/layerforge/trust/rootfs.py: deeper names are refused there.
const MAX_COMPONENTS: usize = 256;
/// The store directory, as a member name starts under it.
const STORE: &str = "nix/store/";

/// What a layer holds, as a build record lists it: python/layerforge/record/build.py's
/// `layer_contents` of the layer's tar. Fields in the order of their JSON keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerContents {
    /// The paths outside the store, `/`-rooted, sorted: the first `MAX_FILES` of them.
    pub files: Vec<String>,
    /// Whether there were more than `MAX_FILES` of them.
    pub files_truncated: bool,
    /// The store paths (`/nix/store/HASH-NAME`) of the members under the store, sorted.
    pub store_paths: Vec<String>,
}

impl LayerContents {
    /// The listing of a tar whose members are `paths`, in archive order (the core's entry
    /// paths: relative, `/`-separated, no `.`, `..` or empty parts, no trailing slash). None
    /// when the record's reader would do more than list them: a name with a `.wh.` part (a
    /// whiteout, opaque marker or aufs name) or deeper than it reads; the record then reads the
    /// blob itself.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<LayerContents> {
        let mut store = std::collections::BTreeSet::new();
        let mut files = Vec::new();
        let mut files_truncated = false;
        for path in paths {
            if path.is_empty() {
                continue;
            }
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() > MAX_COMPONENTS
                || parts
                    .iter()
                    .any(|p| p.is_empty() || *p == "." || *p == ".." || p.starts_with(".wh."))
                || path.contains(['\0', '\u{FFFD}'])
            {
                return None;
            }
            if path.len() > STORE.len() && path.starts_with(STORE) {
                store.insert(format!("/{}", parts[..3].join("/")));
            } else if files.len() < MAX_FILES {
                files.push(format!("/{path}"));
            } else {
                files_truncated = true;
            }
        }
        files.sort();
        Some(LayerContents {
            files,
            files_truncated,
            store_paths: store.into_iter().collect(),
        })
    }

    /// The file's bytes (canonical JSON, as Python's `canonical_json` writes it).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| format!("{CONTENTS_JSON}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/vectors/layer_json.json");

    fn text(value: &Value) -> String {
        value.as_str().expect("a string").to_string()
    }

    fn number(value: &Value) -> u64 {
        value.as_u64().expect("a number")
    }

    #[test]
    fn writes_the_bytes_of_the_shared_vectors() {
        let vectors: Value = serde_json::from_str(VECTORS).expect("the vectors parse");
        let cases = vectors["cases"].as_array().expect("cases");
        assert!(cases.len() >= 3);
        for case in cases {
            let layer = &case["layer"];
            let annotations = match layer.get("annotations").and_then(Value::as_object) {
                Some(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                None => BTreeMap::new(),
            };
            let json = LayerJson {
                descriptor: Descriptor {
                    annotations,
                    digest: text(&layer["digest"]),
                    media_type: text(&layer["mediaType"]),
                    size: number(&layer["size"]),
                },
                diff_id: text(&layer["diffId"]),
                uncompressed_size: number(&layer["uncompressedSize"]),
            };
            let bytes = json.to_bytes().expect("serialises");
            assert_eq!(
                String::from_utf8(bytes).ok().as_deref(),
                case["bytes"].as_str(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn lists_store_paths_and_other_paths_as_the_record_does() {
        let c = LayerContents::of([
            "nix",
            "nix/store",
            "nix/store/abc-b",
            "nix/store/abc-b/bin/x",
            "nix/store/abc-a",
            "etc/passwd",
        ])
        .expect("plain names");
        assert_eq!(c.files, ["/etc/passwd", "/nix", "/nix/store"]);
        assert_eq!(c.store_paths, ["/nix/store/abc-a", "/nix/store/abc-b"]);
        assert!(!c.files_truncated);
        assert_eq!(
            String::from_utf8(c.to_bytes().expect("serialises")).expect("utf-8"),
            r#"{"files":["/etc/passwd","/nix","/nix/store"],"filesTruncated":false,"storePaths":["/nix/store/abc-a","/nix/store/abc-b"]}"#
        );
    }

    #[test]
    fn leaves_whiteouts_and_odd_names_to_the_record() {
        assert!(LayerContents::of(["nix/store/abc-a/.wh.x"]).is_none());
        assert!(LayerContents::of(["a/./b"]).is_none());
    }

    #[test]
    fn truncates_other_paths_as_the_record_does() {
        let names: Vec<String> = (0..MAX_FILES + 1).rev().map(|i| format!("f{i}")).collect();
        let c = LayerContents::of(names.iter().map(String::as_str)).expect("plain names");
        assert_eq!(c.files.len(), MAX_FILES);
        assert!(c.files_truncated);
        assert_eq!(c.files[0], "/f1");
    }
}
