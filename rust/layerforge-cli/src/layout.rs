//! Reading what a push of an OCI image layout involves: the image (manifest or index), its
//! child manifests, the blobs they reference, and the artifacts (SBOMs) referring to them.
//! `None` wherever the Python reader would complain: Python then reports it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::files::{is_regular_of_size, read_regular};
use crate::name_grammar::{components_valid, is_sha256_digest};

/// Manifests registries accept (and the Python push reads) are at most 4 MiB.
const MAX_MANIFEST: u64 = 4 << 20;
/// `index.json` is read whole; anything larger goes to Python.
const MAX_INDEX: u64 = 64 << 20;
/// Indexes nest at most this deep (`MAX_DEPTH` of the Python push).
const MAX_DEPTH: usize = 8;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// `DIR[:REF]`.
#[derive(Debug)]
pub struct LayoutRef {
    pub dir: PathBuf,
    pub reference: Option<String>,
}

impl LayoutRef {
    /// Split at the first `:` whose left side is a layout (references may hold `:`).
    pub fn parse(arg: &str) -> Option<Self> {
        if is_layout(Path::new(arg)) {
            return Some(LayoutRef {
                dir: arg.into(),
                reference: None,
            });
        }
        let (i, _) = arg
            .match_indices(':')
            .find(|(i, _)| is_layout(Path::new(&arg[..*i])))?;
        let reference = &arg[i + 1..];
        if !reference.is_empty() && !valid_ref(reference) {
            return None;
        }
        Some(LayoutRef {
            dir: arg[..i].into(),
            reference: (!reference.is_empty()).then(|| reference.into()),
        })
    }
}

fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file()
}

/// image-spec's `ref`: components of `[A-Za-z0-9]+` joined by one of `-._:@+` or `--`,
/// separated by `/`.
fn valid_ref(reference: &str) -> bool {
    components_valid(
        reference,
        |c| c.is_ascii_alphanumeric(),
        |sep| sep == "--" || (sep.len() == 1 && "-._:@+".contains(sep)),
    )
}

#[derive(Debug, Clone)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn from_json(v: &Value) -> Option<Self> {
        let digest = v.get("digest")?.as_str()?;
        if !is_sha256_digest(digest) {
            return None;
        }
        Some(Descriptor {
            media_type: v.get("mediaType")?.as_str()?.into(),
            digest: digest.into(),
            size: v.get("size")?.as_u64()?,
        })
    }
}

/// What pushing the image means: its manifests (children first) and their blobs.
#[derive(Debug, Default)]
pub struct Graph {
    pub manifests: Vec<Descriptor>,
    /// Config and layer blobs, by digest, with their sizes.
    pub blobs: BTreeMap<String, u64>,
}

pub struct Layout {
    root: PathBuf,
    index: Vec<Value>,
}

impl Layout {
    pub fn open(dir: &Path) -> Option<Self> {
        let data = read_regular(&dir.join("index.json"), MAX_INDEX, None)?;
        let index: Value = serde_json::from_slice(&data).ok()?;
        Some(Layout {
            root: dir.into(),
            index: index.get("manifests")?.as_array()?.clone(),
        })
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        Some(
            self.root
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:")?),
        )
    }

    /// A JSON blob whose content matches its digest and size (as the Python reader checks):
    /// a regular file of the descriptor's size, at most the manifest limit.
    fn read_json(&self, desc: &Descriptor) -> Option<Value> {
        let data = read_regular(
            &self.blob_path(&desc.digest)?,
            MAX_MANIFEST,
            Some(desc.size),
        )?;
        let hex: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if data.len() as u64 != desc.size
            || desc.digest.strip_prefix("sha256:") != Some(hex.as_str())
        {
            return None;
        }
        serde_json::from_slice(&data).ok()
    }

    /// A regular file of the descriptor's size (what the Python push checks before sending).
    fn has_blob(&self, desc: &Descriptor) -> bool {
        self.blob_path(&desc.digest)
            .is_some_and(|p| is_regular_of_size(&p, desc.size))
    }

    /// The index entry for `reference`; without one, the only image there is.
    pub fn resolve(&self, reference: Option<&str>) -> Option<Descriptor> {
        let entry = match reference {
            Some(r) => self.index.iter().find(|m| {
                m.get("annotations")
                    .and_then(|a| a.get(REF_NAME))
                    .and_then(Value::as_str)
                    == Some(r)
            })?,
            None => {
                let images: Vec<&Value> = self
                    .index
                    .iter()
                    .filter(|m| m.get("artifactType").is_none())
                    .collect();
                let [only] = images[..] else { return None };
                only
            }
        };
        Descriptor::from_json(entry)
    }

    pub fn graph(&self, root: &Descriptor) -> Option<Graph> {
        let mut graph = Graph::default();
        self.add_manifest(&mut graph, root, 0)?;
        Some(graph)
    }

    fn add_manifest(&self, graph: &mut Graph, desc: &Descriptor, depth: usize) -> Option<()> {
        if graph.manifests.iter().any(|m| m.digest == desc.digest) {
            return Some(());
        }
        if depth > MAX_DEPTH {
            return None;
        }
        let doc = self.read_json(desc)?;
        if INDEX_TYPES.contains(&desc.media_type.as_str()) {
            for child in doc.get("manifests")?.as_array()? {
                let child = Descriptor::from_json(child)?;
                self.add_manifest(graph, &child, depth + 1)?;
            }
        } else {
            let config = std::iter::once(doc.get("config")?);
            for blob in config.chain(doc.get("layers")?.as_array()?.iter()) {
                let blob = Descriptor::from_json(blob)?;
                if !self.has_blob(&blob) {
                    return None;
                }
                if let Some(size) = graph.blobs.insert(blob.digest, blob.size) {
                    if size != blob.size {
                        return None; // one digest, two sizes: Python reports it
                    }
                }
            }
        }
        graph.manifests.push(desc.clone());
        Some(())
    }

    /// Artifacts listed in index.json, in index order, each with its subject's digest.
    pub fn artifacts(&self) -> Option<Vec<(Descriptor, String)>> {
        let mut out = Vec::new();
        for entry in &self.index {
            if entry.get("artifactType").is_none()
                || entry.get("mediaType")?.as_str()? != IMAGE_MANIFEST
            {
                continue;
            }
            let desc = Descriptor::from_json(entry)?;
            let manifest = self.read_json(&desc)?;
            if let Some(subject) = manifest
                .get("subject")
                .and_then(|s| s.get("digest"))
                .and_then(Value::as_str)
            {
                out.push((desc, subject.to_string()));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_ref;

    #[test]
    fn references() {
        assert!(valid_ref("v1") && valid_ref("app:1.0") && valid_ref("a--b/c@d+e"));
        assert!(
            !valid_ref("")
                && !valid_ref("a..b")
                && !valid_ref("a:")
                && !valid_ref("/a")
                && !valid_ref("a---b")
        );
    }
}
