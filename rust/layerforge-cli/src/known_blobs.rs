//! The known-blobs memory the Python push keeps (`registry-blobs.json` in the cache dir:
//! registry -> digest -> repositories, most recent first). A re-push answered here must
//! leave it as the Python push would, i.e. unchanged: each blob already lists the target
//! repository (the Python push moves a repository to the front only for blobs it sent or
//! mounted there, not for blobs it found).

use std::path::PathBuf;

use serde_json::Value;

use crate::files::read_regular;
use crate::name_grammar::is_sha256_digest;
use crate::origin::valid_registry;
use crate::push_args::valid_repository;

/// The Python push ignores (with a warning) a cache file larger than this.
const MAX_FILE: u64 = 64 << 20;

/// `$LAYERFORGE_CACHE_DIR`, else `$XDG_CACHE_HOME/layerforge`, else `~/.cache/layerforge`.
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

/// The file exactly as the Python push keeps it: canonical JSON (so its save would write
/// the same bytes) of well-formed entries only (so it would warn about nothing).
fn as_python_keeps_it(data: &[u8], known: &Value) -> bool {
    let repos_ok = |repos: &Value| {
        repos.as_array().is_some_and(|list| {
            let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            !names.is_empty()
                && names.len() == list.len()
                && names.len() <= 8
                && names.iter().all(|r| valid_repository(r))
                && names
                    .iter()
                    .enumerate()
                    .all(|(i, r)| !names[..i].contains(r))
        })
    };
    let entries_ok = known.as_object().is_some_and(|registries| {
        registries.iter().all(|(registry, blobs)| {
            valid_registry(registry)
                && blobs.as_object().is_some_and(|blobs| {
                    blobs
                        .iter()
                        .all(|(digest, repos)| is_sha256_digest(digest) && repos_ok(repos))
                })
        })
    });
    entries_ok && serde_json::to_vec(known).is_ok_and(|canonical| canonical == data)
}

/// True when every digest lists `repo` for `registry`.
pub fn all_recorded<'a>(
    registry: &str,
    repo: &str,
    digests: impl IntoIterator<Item = &'a String>,
) -> bool {
    let Some(path) = cache_dir().map(|d| d.join("registry-blobs.json")) else {
        return false;
    };
    let Some(data) = read_regular(&path, MAX_FILE, None) else {
        return false;
    };
    let Ok(known) = serde_json::from_slice::<Value>(&data) else {
        return false;
    };
    if !as_python_keeps_it(&data, &known) {
        return false;
    }
    let Some(by_digest) = known.get(registry) else {
        return false;
    };
    digests.into_iter().all(|d| {
        by_digest
            .get(d)
            .and_then(Value::as_array)
            .is_some_and(|repos| repos.iter().any(|r| r.as_str() == Some(repo)))
    })
}
