//! The publish record a push adds its entry to (`--record FILE`, docs/records.md): written
//! here when the push is answered from its receipt, with the entry the Python push prepared
//! for an unchanged re-push (python/layerforge/record/publish.py does the same merge: an
//! entry for the same registry and repository is replaced, the others are kept).

use std::path::Path;

use serde_json::{json, Value};

use crate::files::{read_regular, write_atomic};

const SCHEMA: &str = "https://layerforge.dev/schemas/publish-record.v1.json";
/// A record lists a few pushes; far less than this.
const MAX_RECORD: u64 = 16 << 20;

/// Add `entry` to the record at `path` (atomically); `None` when it cannot be written.
pub fn add_push(path: &Path, entry: &Value) -> Option<()> {
    let key = (entry.get("registry")?, entry.get("repository")?);
    let mut pushes: Vec<Value> = Vec::new();
    if path.exists() {
        let old = read_regular(path, MAX_RECORD, None)
            .and_then(|data| serde_json::from_slice::<Value>(&data).ok());
        if let Some(old) = old.filter(|o| o.get("$schema").and_then(Value::as_str) == Some(SCHEMA))
        {
            if let Some(list) = old.get("pushes").and_then(Value::as_array) {
                pushes.extend(
                    list.iter()
                        .filter(|p| {
                            (p.get("registry"), p.get("repository")) != (Some(key.0), Some(key.1))
                        })
                        .cloned(),
                );
            }
        }
    }
    pushes.push(entry.clone());
    let record =
        json!({"$schema": SCHEMA, "schemaVersion": 1, "kind": "publish", "pushes": pushes});
    let mut text = serde_json::to_vec_pretty(&record).ok()?;
    text.push(b'\n');
    write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(registry: &str, pushed: u64) -> Value {
        json!({"registry": registry, "repository": "team/app", "bytes": {"pushed": pushed}})
    }

    #[test]
    fn replaces_the_same_registry_and_keeps_the_others() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = dir.path().join("r.json");
        add_push(&path, &entry("a:5000", 10)).expect("written");
        add_push(&path, &entry("b:5000", 20)).expect("written");
        add_push(&path, &entry("a:5000", 0)).expect("written");
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["$schema"], SCHEMA);
        let pushes = doc["pushes"].as_array().expect("pushes");
        assert_eq!(pushes, &vec![entry("b:5000", 20), entry("a:5000", 0)]);
    }

    #[test]
    fn a_file_that_is_no_record_is_replaced() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = dir.path().join("r.json");
        std::fs::write(&path, b"not json").expect("write");
        add_push(&path, &entry("a:5000", 1)).expect("written");
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["pushes"].as_array().map(Vec::len), Some(1));
    }
}
