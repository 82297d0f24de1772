//! Is the push a no-op? The checks of the Python push (`layerforge.registry.push`) for an
//! image the registry already has: every tag names the image's digest (so the registry holds
//! every manifest and blob under it), every artifact referring to it is stored and listed
//! (referrers API, or the `sha256-<hex>` tag index where the registry has none), and the
//! known-blobs memory already says so. Any other answer, and any error, means "not known to
//! be current": Python then pushes.

use std::io::Write as _;
use std::time::Instant;

use serde_json::Value;

use crate::http::Connection;
use crate::known_blobs;
use crate::layout::{Descriptor, Layout};
use crate::origin::is_loopback;
use crate::push_args::PushArgs;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What the push would print: the same summary as the Python command.
pub struct Report {
    target: String,
    digest: String,
    tags: Vec<String>,
    skipped: usize,
    referrers: Vec<String>,
}

impl Report {
    /// Print it; a closed stdout or stderr is not an error of the push.
    pub fn print(&self) {
        let _ = writeln!(
            std::io::stderr(),
            "blobs: 0 pushed (0.0 MiB), {} skipped, 0 mounted; 0 manifests written",
            self.skipped
        );
        let mut out = std::io::stdout().lock();
        for tag in &self.tags {
            let _ = writeln!(out, "{}:{tag} {} (unchanged)", self.target, self.digest);
        }
        for r in &self.referrers {
            let _ = writeln!(out, "referrer {r}");
        }
    }
}

pub fn already_current(args: &PushArgs) -> Option<Report> {
    let target = &args.target;
    if !(args.insecure || is_loopback(&target.registry)) {
        return None; // TLS registries: Python's client
    }
    let layout = Layout::open(&args.source.dir)?;
    let root = layout.resolve(args.source.reference.as_deref())?;
    let graph = layout.graph(&root)?;
    if !known_blobs::all_recorded(&target.registry, &target.repository, graph.blobs.keys()) {
        return None;
    }
    // Referrers of the image's manifests, in manifest order (as the Python push takes them).
    let listed = layout.artifacts()?;
    let artifacts: Vec<&(Descriptor, String)> = graph
        .manifests
        .iter()
        .flat_map(|m| {
            listed
                .iter()
                .filter(move |(_, subject)| *subject == m.digest)
        })
        .collect();

    let deadline = Instant::now() + args.check_time;
    let mut conn = Connection::open(&target.registry, deadline)?;
    let repo = &target.repository;
    for tag in &args.tags {
        let resp = conn.request(
            "HEAD",
            &format!("/v2/{repo}/manifests/{tag}"),
            Some(MANIFEST_ACCEPT),
        )?;
        if resp.status != 200 || resp.header("Docker-Content-Digest") != Some(root.digest.as_str())
        {
            return None;
        }
    }
    for (artifact, subject) in artifacts.iter().copied() {
        let resp = conn.request(
            "HEAD",
            &format!("/v2/{repo}/manifests/{}", artifact.digest),
            Some(MANIFEST_ACCEPT),
        )?;
        if resp.status != 200 {
            return None;
        }
        if conn
            .request("GET", &format!("/v2/{repo}/referrers/{subject}"), None)?
            .status
            == 200
        {
            continue;
        }
        let hex = subject.strip_prefix("sha256:")?;
        let resp = conn.request(
            "GET",
            &format!("/v2/{repo}/manifests/sha256-{hex}"),
            Some(MANIFEST_ACCEPT),
        )?;
        if resp.status != 200 {
            return None;
        }
        let index: Value = serde_json::from_slice(&resp.body).ok()?;
        let listed = index
            .get("manifests")?
            .as_array()?
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(artifact.digest.as_str()));
        if !listed {
            return None;
        }
    }
    Some(Report {
        target: format!("{}/{}", target.registry, target.repository),
        digest: root.digest,
        tags: args.tags.clone(),
        skipped: graph.blobs.len(),
        referrers: artifacts.iter().map(|(a, _)| a.digest.clone()).collect(),
    })
}
