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
}
