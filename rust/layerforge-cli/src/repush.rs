//! Is the push a no-op? The Python push left a receipt for this command line
//! ([`crate::receipt`]: private to this user, naming the layout, registry, repository and tags
//! the command line names); the answer is yes when what it states still holds: the layout's
//! `index.json` is the same, every blob it pushed is still a regular file of its size or absent
//! (a push leaves an absent blob to the registry, which holds the image: every tag is checked;
//! `pants publish` gives it only the blobs the registry lacks), the manifests still match their
//! digests, every tag still names the image, every referrer is
//! still stored and its referrers index, where the registry has no referrers API, is still
//! the one the push left. Any other answer, and any error, means "not known to be current":
//! Python then pushes.

use std::ffi::OsString;
use std::io::Write as _;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::files::{is_absent, is_regular_of_size, read_regular};
use crate::http::Connection;
use crate::publish_record;
use crate::receipt::{self, blob_path, hex, Receipt};

/// The environment variable the Python push reads its request timeout from.
pub const TIMEOUT_ENV: &str = "LAYERFORGE_REGISTRY_TIMEOUT";
/// The native check never takes longer than this, whatever the timeout allows.
const MAX_CHECK: Duration = Duration::from_secs(10);
/// Registries accept manifests of at most 4 MiB; index.json is read with the same bound.
const MAX_DOCUMENT: u64 = 4 << 20;

/// What the push prints when nothing is sent: the lines the receipt holds.
pub struct Report {
    stderr: Vec<String>,
    stdout: Vec<String>,
}

impl Report {
    /// Print it; a closed stdout or stderr is not an error of the push.
    pub fn print(&self) {
        let mut err = std::io::stderr().lock();
        for line in &self.stderr {
            let _ = writeln!(err, "{line}");
        }
        let mut out = std::io::stdout().lock();
        for line in &self.stdout {
            let _ = writeln!(out, "{line}");
        }
    }
}

fn sha256_of(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// `MAX_CHECK`, or less when the timeout (seconds, already accepted by the Python push
/// whose receipt names it) says so.
fn check_time(timeout: Option<&str>) -> Option<Duration> {
    match timeout.filter(|t| !t.is_empty()) {
        None => Some(MAX_CHECK),
        Some(t) => {
            let seconds: f64 = t.parse().ok()?;
            (seconds > 0.0 && seconds.is_finite())
                .then(|| Duration::from_secs_f64(seconds.min(10.0)))
        }
    }
}

pub fn already_current(args: &[OsString]) -> Option<Report> {
    let timeout = std::env::var_os(TIMEOUT_ENV);
    let r = receipt::load(args, timeout.as_deref())?;
    let timeout_text = match &timeout {
        Some(t) => Some(t.to_str()?),
        None => None,
    };
    let deadline = Instant::now() + check_time(timeout_text)?;
    layout_unchanged(&r)?;
    registry_current(&r, deadline)?;
    if let Some((path, entry)) = &r.record {
        publish_record::add_push(path, entry)?;
    }
    Some(Report {
        stderr: r.stderr,
        stdout: r.stdout,
    })
}

fn layout_unchanged(r: &Receipt) -> Option<()> {
    let index = read_regular(&r.index_path, MAX_DOCUMENT, None)?;
    if sha256_of(&index) != r.index_digest {
        return None;
    }
    for (digest, size) in &r.blobs {
        let path = blob_path(&r.blob_dir, digest);
        if !is_absent(&path) && !is_regular_of_size(&path, *size) {
            return None;
        }
    }
    for digest in &r.documents {
        let data = read_regular(&blob_path(&r.blob_dir, digest), MAX_DOCUMENT, None)?;
        if sha256_of(&data) != *digest {
            return None;
        }
    }
    Some(())
}

fn registry_current(r: &Receipt, deadline: Instant) -> Option<()> {
    let mut conn = Connection::open(&r.registry, deadline)?;
    let mut names = |reference: &str, digest: &str| -> Option<()> {
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let resp = conn.request("HEAD", &path, Some(&r.accept))?;
        (resp.status == 200 && resp.header("Docker-Content-Digest") == Some(digest)).then_some(())
    };
    for tag in &r.tags {
        names(tag, &r.root)?;
    }
    for (referrer, listing) in &r.referrers {
        names(referrer, referrer)?;
        if let Some((tag, index)) = listing {
            names(tag, index)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_bound_the_check() {
        assert_eq!(check_time(None), Some(MAX_CHECK));
        assert_eq!(check_time(Some("")), Some(MAX_CHECK));
        assert_eq!(check_time(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(check_time(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(check_time(Some("600")), Some(MAX_CHECK));
        for odd in ["0", "-1", "abc", "NaN", "inf"] {
            assert_eq!(check_time(Some(odd)), None, "{odd}");
        }
    }
}
