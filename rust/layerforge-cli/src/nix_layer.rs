//! `layerforge nix-layer --job JSON` of store paths, built here through layerforge-core
//! without starting Python (a Pants package of a closure runs one such process per store-path
//! layer or batch of small layers).
//!
//! Only the argv a plan's store-path job gives is answered: `--job` and a layer job document
//! (`layer_job`, the format python/layerforge/images/nix/layer_job_document.py writes) whose
//! layers are all store-path layers of one compression, media type and architecture the core
//! knows. Anything else (another option, `--job=JSON`, a document that breaks a rule of its
//! format, a root or snapshotter layer, a store path the local store does not hold as valid,
//! any build failure) goes to Python, which realises missing paths and reports errors; a
//! failed native attempt leaves nothing behind that Python would not. The layer is the one
//! Python builds: the same spec (`layer_specs.store_paths_spec`), the same core, the same
//! `layer.json` bytes (`layer_dir`), and the same `contents.json` (what the layer holds, as a
//! build record lists it: `layer_dir::LayerContents`). `LAYERFORGE_NATIVE_NIX_LAYER=0` turns
//! this off.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use layerforge_core::blob::BlobStore;
use layerforge_core::compress::Compression;
use layerforge_core::elf::MachineCheck;
use layerforge_core::entry::{EntryOptions, LayerSpec, PermRule};
use layerforge_core::layer::{self, BuildOptions, LayerResult};
use layerforge_core::progress::Progress;

use crate::files::write_atomic;
use crate::layer_dir::{Descriptor, LayerContents, LayerJson, CONTENTS_JSON, LAYER_JSON};
use crate::layer_job::{self, JobDocument, JobLayer, LayerKind};

/// `TMP_DIR` of python/layerforge/layout/oci_layout.py (a layer directory's scratch
/// directory); tests/test_nix_jobs.py holds the two to one another.
const TMP_DIR: &str = ".layerforge-tmp";

/// What the native command builds: store-path layers sharing their build options.
#[derive(Debug)]
pub struct Request {
    /// Each layer, in order (every one a store-path layer).
    layers: Vec<JobLayer>,
    /// The compression of every layer.
    compression: Compression,
    /// The architecture every layer's executables are checked against, if any.
    machine: Option<MachineCheck>,
    /// The media type of every layer.
    media_type: String,
}

/// The build of `args` (after `nix-layer`) and its exit status, or None for Python to run it.
pub fn run(args: &[OsString]) -> Option<i32> {
    let request = parse(args)?;
    let paths: Vec<String> = request
        .layers
        .iter()
        .flat_map(|l| l.store_paths.iter().cloned())
        .collect();
    if !all_valid(&paths) || !distinct_dirs(&request) {
        return None;
    }
    let built = build(&request)?;
    for (l, layer) in request.layers.iter().zip(&built) {
        println!("{}: {} {} bytes", l.out, layer.digest, layer.size);
    }
    Some(0)
}

/// The request `args` make, if they are `--job DOCUMENT` and the document is one this
/// answers.
pub fn parse(args: &[OsString]) -> Option<Request> {
    let [flag, value] = args else {
        return None;
    };
    if flag.to_str()? != "--job" {
        return None;
    }
    request(layer_job::parse(value.to_str()?).ok()?)
}

/// The native build of `document`: every layer a store-path layer, of one compression, media
/// type and architecture, which the core knows.
pub fn request(document: JobDocument) -> Option<Request> {
    let first = document.layers.first()?;
    let shared = |l: &JobLayer| {
        l.kind == LayerKind::StorePaths
            && l.compression == first.compression
            && l.media_type == first.media_type
            && l.check_arch == first.check_arch
    };
    if !document.layers.iter().all(shared) {
        return None;
    }
    let compression =
        Compression::parse(&first.compression.algorithm, first.compression.level).ok()?;
    let machine = match &first.check_arch {
        Some(arch) => Some(MachineCheck::for_arch(arch).ok()?),
        None => None,
    };
    let media_type = first.media_type.clone();
    Some(Request {
        layers: document.layers,
        compression,
        machine,
        media_type,
    })
}

/// Whether the local store holds every path as valid, as the Python command asks before
/// building: from Nix's database when this process can read it (`valid_in_database`), else
/// from `nix-store --check-validity`; any doubt is a no.
fn all_valid(paths: &[String]) -> bool {
    valid_in_database(paths, &NixDatabase::from_env()).unwrap_or_else(|| nix_store_valid(paths))
}

/// Where Nix keeps the database of the store this command reads paths from.
#[derive(Debug, PartialEq)]
struct NixDatabase {
    /// The store directory every path must be in (`/nix/store/`).
    store: &'static str,
    /// The SQLite database that lists the store's valid paths; None when the environment
    /// moves the store or its state (`NIX_STORE_DIR`, `NIX_STORE`, `NIX_STATE_DIR`), whose
    /// database only Nix itself knows.
    path: Option<PathBuf>,
}

impl NixDatabase {
    fn from_env() -> NixDatabase {
        Self::with_env(|name| std::env::var_os(name))
    }

    fn with_env(var: impl Fn(&str) -> Option<OsString>) -> NixDatabase {
        let moved = ["NIX_STORE_DIR", "NIX_STORE", "NIX_STATE_DIR"]
            .iter()
            .any(|name| var(name).is_some_and(|v| !v.is_empty()));
        let path = (!moved).then(|| PathBuf::from("/nix/var/nix/db/db.sqlite"));
        NixDatabase {
            store: "/nix/store/",
            path,
        }
    }
}

/// Whether every path is a row of Nix's `ValidPaths` table (what `nix-store
/// --check-validity` reads: Nix adds a path's row only once its files are complete, and
/// removes it before deleting them), read-only; None when that cannot be answered here (the
/// store or its state moved, a path outside `/nix/store/`, a database this process cannot
/// open or query): then `nix-store` answers. The files of a valid path are the ones the
/// layer reads, so a path being built, substituted or collected is never archived.
fn valid_in_database(paths: &[String], db: &NixDatabase) -> Option<bool> {
    use rusqlite::{Connection, OpenFlags};
    let path = db.path.as_ref()?;
    if paths
        .iter()
        .any(|p| !p.starts_with(db.store) || p[db.store.len()..].contains('/'))
    {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
    let mut query = conn
        .prepare("SELECT 1 FROM ValidPaths WHERE path = ?1")
        .ok()?;
    for p in paths {
        if !query.exists([p]).ok()? {
            return Some(false);
        }
    }
    Some(true)
}

/// `nix-store --check-validity` of every path.
fn nix_store_valid(paths: &[String]) -> bool {
    Command::new("nix-store")
        .arg("--check-validity")
        .arg("--print-invalid")
        .args(paths)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
}

/// Every layer's `out` names a directory of its own, by where it resolves (`L`, `x/../L` and a
/// link to `L` are one directory); otherwise, or in doubt, Python answers with its error.
fn distinct_dirs(request: &Request) -> bool {
    let mut seen = std::collections::HashSet::new();
    request
        .layers
        .iter()
        .all(|l| resolved(Path::new(&l.out)).is_some_and(|p| seen.insert(p)))
}

/// Where `path` resolves: itself canonical when it exists, else its canonical parent joined
/// with its name; None for a dangling link, a name ending in `..` or a missing parent.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = fs::canonicalize(path) {
        return Some(p);
    }
    if fs::symlink_metadata(path).is_ok() {
        return None; // a dangling link: where it would point is Python's to judge
    }
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(parent).ok()?.join(name))
}

/// A layer directory of the request: where its blob and layer.json go, and whether this
/// process made it (only then is anything in it undone).
struct LayerDir {
    out: PathBuf,
    created: bool,
}

impl LayerDir {
    fn new(out: &str) -> LayerDir {
        let out = PathBuf::from(out);
        let created = !out.exists() && fs::symlink_metadata(&out).is_err();
        LayerDir { out, created }
    }

    fn blob_dir(&self) -> PathBuf {
        self.out.join("blobs").join("sha256")
    }

    /// Remove what this process put here: the layer's layer.json and blob (`built`, when its
    /// blob is this call's), the scratch directory when empty, and the directories it made.
    fn undo(&self, built: Option<&LayerResult>) {
        let _ = fs::remove_dir(self.out.join(TMP_DIR)); // only if empty, as Python does
        if !self.created {
            return;
        }
        if let Some(layer) = built {
            let _ = fs::remove_file(self.out.join(LAYER_JSON));
            let _ = fs::remove_file(self.out.join(CONTENTS_JSON));
            if layer.created {
                let _ = fs::remove_file(self.blob_dir().join(layer.digest.hex()));
            }
        }
        for d in [self.blob_dir(), self.out.join("blobs"), self.out.clone()] {
            let _ = fs::remove_dir(d);
        }
    }
}

/// Build every layer of the request, concurrently, each into its directory as `nix-layer`
/// does; on any failure remove what this made (the core removes its own blobs) and give None.
fn build(request: &Request) -> Option<Vec<LayerResult>> {
    let dirs: Vec<LayerDir> = request
        .layers
        .iter()
        .map(|l| LayerDir::new(&l.out))
        .collect();
    let built = build_into(request, &dirs);
    for d in &dirs {
        match built {
            Some(_) => {
                let _ = fs::remove_dir(d.out.join(TMP_DIR)); // only if empty
            }
            None => d.undo(None),
        }
    }
    built
}

fn build_into(request: &Request, dirs: &[LayerDir]) -> Option<Vec<LayerResult>> {
    let opts = BuildOptions {
        compression: request.compression,
        machine: request.machine,
        ..BuildOptions::default()
    };
    let stores = dirs
        .iter()
        .map(|d| BlobStore::open(d.blob_dir(), d.out.join(TMP_DIR)).ok())
        .collect::<Option<Vec<_>>>()?;
    let specs: Vec<LayerSpec> = request.layers.iter().map(spec).collect();
    let store_refs: Vec<&BlobStore> = stores.iter().collect();
    let built = layer::build_layers_into(&specs, &store_refs, &opts, &Progress::new()).ok()?;
    for (i, (d, layer)) in dirs.iter().zip(&built).enumerate() {
        let written = layer_json(&request.media_type, layer)
            .and_then(|doc| write_atomic(&d.out.join(LAYER_JSON), &doc))
            .and_then(|()| write_contents(&d.out, &specs[i]));
        if written.is_none() {
            if d.created {
                let _ = fs::remove_file(d.out.join(LAYER_JSON)); // written before contents.json
            }
            for (d, layer) in dirs.iter().zip(&built).skip(i) {
                if layer.created {
                    let _ = fs::remove_file(d.blob_dir().join(layer.digest.hex()));
                }
            }
            for (d, layer) in dirs.iter().zip(&built).take(i) {
                d.undo(Some(layer));
            }
            return None;
        }
    }
    Some(built)
}

/// The layer directory's contents.json, when the layer's entries are ones whose listing is
/// plain (see [`LayerContents::of`]); without it a build record reads the blob instead.
fn write_contents(out: &Path, spec: &LayerSpec) -> Option<()> {
    let Some(contents) = spec
        .collect()
        .ok()
        .and_then(|entries| LayerContents::of(entries.iter().map(|e| e.path.as_str())))
    else {
        return Some(());
    };
    write_atomic(&out.join(CONTENTS_JSON), &contents.to_bytes().ok()?)
}

/// `layer_specs.store_paths_spec`: store paths as they are (modes kept, owners root).
fn spec(layer: &JobLayer) -> LayerSpec {
    let mut spec = LayerSpec::new(EntryOptions {
        mtime: layer.mtime,
        uid: 0,
        gid: 0,
        keep_setuid: true,
    });
    spec.add_dir("/nix", 0o755);
    spec.add_dir("/nix/store", 0o755);
    let mut paths = layer.store_paths.clone();
    paths.sort();
    for p in paths {
        // Python: a directory that is not a symlink is a tree; anything else one path
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            spec.add_tree(p.clone(), p);
        } else {
            spec.add_path(p.clone(), p);
        }
    }
    for rule in &layer.perms {
        spec.add_perm_rule(PermRule {
            pattern: rule.pattern.clone(),
            mode: rule.mode,
            uid: rule.uid,
            gid: rule.gid,
        });
    }
    spec
}

/// The layer directory's layer.json (layer_dir.write_layer_dir's bytes).
fn layer_json(media_type: &str, built: &LayerResult) -> Option<Vec<u8>> {
    LayerJson {
        descriptor: Descriptor {
            annotations: BTreeMap::new(),
            digest: built.digest.to_string(),
            media_type: media_type.to_string(),
            size: built.size,
        },
        diff_id: built.diff_id.to_string(),
        uncompressed_size: built.uncompressed_size,
    }
    .to_bytes()
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/vectors/layer_job.json");
    const P: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-app-1.0";

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    /// A document of store-path layers, one per `out`, each of the store path `P`.
    fn job(outs: &[&str]) -> String {
        let layers: Vec<String> = outs
            .iter()
            .map(|out| {
                format!(
                    r#"{{"account":null,"checkArch":"amd64","compression":{{"algorithm":"zstd","level":5}},"copyToRoot":[],"copyToRootMode":"symlink","kind":"store-paths","mediaType":"m","mtime":1,"out":{out:?},"perms":[{{"gid":2,"mode":488,"pattern":"x","uid":1}}],"storePaths":["{P}"]}}"#
                )
            })
            .collect();
        format!(
            r#"{{"kind":"layerforge-layer-job","layers":[{}],"version":1}}"#,
            layers.join(",")
        )
    }

    #[test]
    fn answers_the_vectors_it_says_it_builds() {
        let vectors: Value = serde_json::from_str(VECTORS).expect("the vectors parse");
        for case in vectors["valid"].as_array().expect("valid cases") {
            let text = match case.get("text").and_then(Value::as_str) {
                Some(text) => text.to_string(),
                None => case["document"].to_string(),
            };
            let native = parse(&args(&["--job", &text])).is_some();
            assert_eq!(Some(native), case["native"].as_bool(), "{}", case["name"]);
        }
        for case in vectors["invalid"].as_array().expect("invalid cases") {
            let text = match case.get("text").and_then(Value::as_str) {
                Some(text) => text.to_string(),
                None => case["document"].to_string(),
            };
            assert!(
                parse(&args(&["--job", &text])).is_none(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn reads_a_batch_into_its_layers_and_their_rules() {
        let r = parse(&args(&["--job", &job(&["layer1", "layer2"])])).expect("answered");
        let outs: Vec<&str> = r.layers.iter().map(|l| l.out.as_str()).collect();
        assert_eq!(outs, ["layer1", "layer2"]);
        assert_eq!(r.media_type, "m");
        let rule = &r.layers[0].perms[0];
        assert_eq!(
            (rule.mode, rule.uid, rule.gid),
            (Some(0o750), Some(1), Some(2))
        );
        assert!(r.machine.is_some());
    }

    #[test]
    fn leaves_every_other_argv_to_python() {
        let doc = job(&["layer"]);
        assert!(parse(&args(&["--job", &doc])).is_some());
        for argv in [
            vec!["--job".to_string()],
            vec![format!("--job={doc}")],
            vec![
                "--job".to_string(),
                doc.clone(),
                "--threads".to_string(),
                "2".to_string(),
            ],
            vec!["--threads".to_string(), "2".to_string()],
            vec!["--jo".to_string(), doc.clone()],
            vec!["--out".to_string(), "layer".to_string()],
            vec!["--job".to_string(), doc.replace("zstd", "lz4")],
            vec!["--job".to_string(), doc.replace(r#""amd64""#, r#""mips""#)],
            vec!["--job".to_string(), doc.replace("store-paths", "root")],
        ] {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            assert!(parse(&args(&a)).is_none(), "{argv:?}");
        }
    }

    #[test]
    fn outs_resolving_to_one_directory_are_left_to_python() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |rel: &str| tmp.path().join(rel).to_str().unwrap().to_string();
        fs::create_dir(tmp.path().join("x")).unwrap();
        fs::create_dir(tmp.path().join("made")).unwrap();
        std::os::unix::fs::symlink("made", tmp.path().join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join("dangling")).unwrap();
        let request = |a: &str, b: &str| parse(&args(&["--job", &job(&[a, b])])).unwrap();
        for (a, b) in [
            (dir("layer"), dir("x/../layer")),
            (dir("made"), dir("link")),
            (dir("layer"), dir("dangling")),
            (dir("layer"), dir("missing/layer")),
        ] {
            assert!(!distinct_dirs(&request(&a, &b)), "{a} {b}");
        }
        assert!(distinct_dirs(&request(&dir("layer"), &dir("x/layer"))));
    }
}

#[cfg(test)]
mod database_tests {
    use super::*;

    const VALID: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-app-1.0";
    const OTHER: &str = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-lib-2.0";

    /// A database with Nix's `ValidPaths` table (the columns Nix's schema 10 has) holding
    /// `VALID` only.
    fn database(dir: &Path) -> NixDatabase {
        let path = dir.join("db.sqlite");
        let conn =
            rusqlite::Connection::open(&path).expect("a database in the temporary directory");
        conn.execute_batch(
            "CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null, \
             hash text not null, registrationTime integer not null, deriver text, narSize integer, \
             ultimate integer, sigs text, ca text);",
        )
        .expect("the table");
        conn.execute(
            "INSERT INTO ValidPaths (path, hash, registrationTime) VALUES (?1, 'sha256:00', 1)",
            [VALID],
        )
        .expect("a row");
        NixDatabase {
            store: "/nix/store/",
            path: Some(path),
        }
    }

    #[test]
    fn a_path_is_valid_only_when_nix_lists_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = database(dir.path());
        assert_eq!(valid_in_database(&[VALID.to_string()], &db), Some(true));
        assert_eq!(
            valid_in_database(&[VALID.to_string(), OTHER.to_string()], &db),
            Some(false)
        );
        assert_eq!(valid_in_database(&[], &db), Some(true));
    }

    #[test]
    fn anything_it_cannot_answer_goes_to_nix_store() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = database(dir.path());
        for outside in ["/tmp/x", "/nix/storeX/abc", "/nix/store/abc/../../etc"] {
            assert_eq!(
                valid_in_database(&[outside.to_string()], &db),
                None,
                "{outside}"
            );
        }
        let missing = NixDatabase {
            store: "/nix/store/",
            path: Some(dir.path().join("none.sqlite")),
        };
        assert_eq!(valid_in_database(&[VALID.to_string()], &missing), None);
        let garbage = dir.path().join("garbage.sqlite");
        fs::write(&garbage, b"not a database").expect("a file");
        let not_nix = NixDatabase {
            store: "/nix/store/",
            path: Some(garbage),
        };
        assert_eq!(valid_in_database(&[VALID.to_string()], &not_nix), None);
    }

    #[test]
    fn a_moved_store_or_state_is_left_to_nix() {
        assert_eq!(
            NixDatabase::with_env(|_| None).path,
            Some(PathBuf::from("/nix/var/nix/db/db.sqlite"))
        );
        for name in ["NIX_STORE_DIR", "NIX_STORE", "NIX_STATE_DIR"] {
            let db = NixDatabase::with_env(|n| (n == name).then(|| OsString::from("/elsewhere")));
            assert_eq!(db.path, None, "{name}");
            assert_eq!(valid_in_database(&[VALID.to_string()], &db), None);
        }
        assert!(
            NixDatabase::with_env(|_| Some(OsString::new()))
                .path
                .is_some(),
            "empty means unset"
        );
    }
}
