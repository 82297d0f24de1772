//! The known-blobs memory the Python push keeps (`registry-blobs.json` in the cache dir:
//! registry -> digest -> repositories, most recent first). A re-push answered here must
//! leave it as the Python push would, i.e. unchanged: each blob already lists the target
//! repository first.

use std::path::PathBuf;

use serde_json::Value;

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

/// True when every digest lists `repo` first for `registry`.
pub fn all_recorded<'a>(
    registry: &str,
    repo: &str,
    digests: impl IntoIterator<Item = &'a String>,
) -> bool {
    let Some(path) = cache_dir().map(|d| d.join("registry-blobs.json")) else {
        return false;
    };
    let Some(known) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return false;
    };
    let Some(by_digest) = known.get(registry) else {
        return false;
    };
    digests.into_iter().all(|d| {
        by_digest
            .get(d)
            .and_then(|repos| repos.get(0))
            .and_then(Value::as_str)
            == Some(repo)
    })
}
