//! `layerforge nix-layer` of store paths, built here through layerforge-core without starting
//! Python (a Pants package of a closure runs one such process per store-path layer or batch of
//! small layers).
//!
//! Only the argv a plan's store-path job gives (`python/layerforge/images/nix/layer_jobs.py`)
//! is answered: `--out DIR --mtime N [--check-arch ARCH] --compression C [--level N]
//! [--perms REGEX=MODE[:UID:GID]]... --store-path PATH... [--out DIR --store-path PATH...]...`
//! (each `--store-path` belongs to the `--out` before it; the options are every layer's), each
//! option as its own argument, every value in the grammar the Python command accepts. Anything else (another option,
//! `--opt=value`, a value the grammar doubts, a store path the local store does not hold as
//! valid, any build failure) goes to Python, which realises missing paths and reports errors;
//! a failed native attempt leaves nothing behind that Python would not. The layer is the one
//! Python builds: the same spec (`layer_specs.store_paths_spec`), the same core, the same
//! `layer.json` bytes. `LAYERFORGE_NATIVE_NIX_LAYER=0` turns this off.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use layerforge_core::blob::BlobStore;
use layerforge_core::compress::Compression;
use layerforge_core::elf::MachineCheck;
use layerforge_core::entry::{EntryOptions, LayerSpec, PermRule};
use layerforge_core::layer::{self, BuildOptions, LayerResult};
use layerforge_core::progress::Progress;

/// `LINUX_ARCHES` of python/layerforge/model/platform.py (`--check-arch`'s choices); a test
/// holds the two to one another.
pub const CHECK_ARCHES: [&str; 7] = [
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
];
/// `LAYER_BY_COMPRESSION` of python/layerforge/model/media_types.py.
const MEDIA_TYPES: [(&str, &str); 3] = [
    ("none", "application/vnd.oci.image.layer.v1.tar"),
    ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
];
/// `TMP_DIR` of python/layerforge/layout/oci_layout.py.
const TMP_DIR: &str = ".layerforge-tmp";
const STORE_DIR: &str = "/nix/store/";

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// Each layer directory and its store paths, in order.
    layers: Vec<(String, Vec<String>)>,
    mtime: u64,
    machine: Option<String>,
    compression: String,
    level: Option<i32>,
    perms: Vec<PermRule>,
}

/// The build of `args` (after `nix-layer`) and its exit status, or None for Python to run it.
pub fn run(args: &[OsString]) -> Option<i32> {
    let request = parse(args)?;
    let paths: Vec<String> = request
        .layers
        .iter()
        .flat_map(|(_, paths)| paths.iter().cloned())
        .collect();
    if !all_valid(&paths) || !distinct_dirs(&request) {
        return None;
    }
    let built = build(&request)?;
    for ((out, _), layer) in request.layers.iter().zip(&built) {
        println!("{out}: {} {} bytes", layer.digest, layer.size);
    }
    Some(0)
}

/// The request `args` make, if every one is in the grammar this module answers.
pub fn parse(args: &[OsString]) -> Option<Request> {
    let mut layers: Vec<(String, Vec<String>)> = Vec::new();
    let mut mtime = None;
    let mut machine = None;
    let mut compression = None;
    let mut level = None;
    let mut perms = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next()?.to_str()?;
        if value.starts_with('-') || value.is_empty() {
            return None; // argparse reads these otherwise (an option, a negative number)
        }
        match flag.to_str()? {
            "--out" => {
                let out = plain_path(value)?.to_string();
                if layers.iter().any(|(o, _)| *o == out) {
                    return None;
                }
                layers.push((out, Vec::new()));
            }
            "--mtime" => once(&mut mtime, digits(value)?.parse::<u64>().ok()?)?,
            "--check-arch" => once(
                &mut machine,
                CHECK_ARCHES.contains(&value).then(|| value.to_string())?,
            )?,
            "--compression" => {
                let known = MEDIA_TYPES.iter().any(|(name, _)| *name == value);
                once(&mut compression, known.then(|| value.to_string())?)?
            }
            "--level" => once(&mut level, digits(value)?.parse::<i32>().ok()?)?,
            "--perms" => perms.push(perm_rule(value)?),
            "--store-path" => layers.last_mut()?.1.push(store_path(value)?.to_string()),
            _ => return None,
        }
    }
    if layers.is_empty() || layers.iter().any(|(_, paths)| paths.is_empty()) {
        return None;
    }
    Some(Request {
        layers,
        mtime: mtime?,
        machine,
        compression: compression.unwrap_or_else(|| "gzip".to_string()),
        level,
        perms,
    })
}

fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    // argparse takes the last of a repeated option; leave that to it
    slot.is_none().then(|| *slot = Some(value))
}

fn digits(value: &str) -> Option<&str> {
    (value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit())).then_some(value)
}

/// A path pathlib prints as given (no empty, `.` components or trailing slash).
fn plain_path(value: &str) -> Option<&str> {
    let body = value.strip_prefix('/').unwrap_or(value);
    let ok = !body.is_empty() && body.split('/').all(|c| !c.is_empty() && c != ".");
    (ok && !value.contains('\0')).then_some(value)
}

/// `/nix/store/<hash>-<name>` exactly (store_path.py's grammar; Python also strips a trailing
/// slash, which is left to it).
fn store_path(value: &str) -> Option<&str> {
    let rest = value.strip_prefix(STORE_DIR)?;
    let (hash, name) = (rest.get(..32)?, rest.get(32..)?.strip_prefix('-')?);
    let hash_ok = hash
        .bytes()
        .all(|b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"eotu".contains(&b)));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b));
    (hash_ok && name_ok).then_some(value)
}

/// `REGEX=MODE[:UID:GID]` with numeric ids (perms.py's PERM_GRAMMAR, `names=False`): the
/// regex runs to the last `=` (nothing after it may hold one), then a mode, an owner or both.
fn perm_rule(value: &str) -> Option<PermRule> {
    let (pattern, rest) = value.rsplit_once('=')?;
    if pattern.is_empty() || rest.is_empty() || value.contains('\n') {
        return None;
    }
    let (mode, owner) = match rest.split_once(':') {
        Some((mode, owner)) => (mode, Some(owner)),
        None => (rest, None),
    };
    let mode = match mode.len() {
        0 => None,
        3 | 4 if mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            Some(u32::from_str_radix(mode, 8).ok()?)
        }
        _ => return None,
    };
    let (uid, gid) = match owner {
        None => (None, None),
        Some(owner) => {
            let (uid, gid) = owner.split_once(':')?;
            (Some(id(uid)?), Some(id(gid)?))
        }
    };
    Some(PermRule {
        pattern: pattern.to_string(),
        mode,
        uid,
        gid,
    })
}

fn id(value: &str) -> Option<u32> {
    digits(value).filter(|v| !v.is_empty())?.parse().ok()
}

/// Whether the local store holds every path as valid (`nix-store --check-validity`, as the
/// Python command asks before building); any doubt is a no.
fn all_valid(paths: &[String]) -> bool {
    Command::new("nix-store")
        .arg("--check-validity")
        .arg("--print-invalid")
        .args(paths)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
}

/// Every `--out` names a directory of its own, by where it resolves (`L`, `x/../L` and a
/// link to `L` are one directory); otherwise, or in doubt, Python answers with its error.
fn distinct_dirs(request: &Request) -> bool {
    let mut seen = std::collections::HashSet::new();
    request
        .layers
        .iter()
        .all(|(out, _)| resolved(Path::new(out)).is_some_and(|p| seen.insert(p)))
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
            let _ = fs::remove_file(self.out.join("layer.json"));
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
        .map(|(out, _)| LayerDir::new(out))
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
    let media_type = MEDIA_TYPES
        .iter()
        .find(|(name, _)| *name == request.compression)?
        .1;
    let opts = BuildOptions {
        compression: Compression::parse(&request.compression, request.level).ok()?,
        machine: match &request.machine {
            Some(arch) => Some(MachineCheck::for_arch(arch).ok()?),
            None => None,
        },
        ..BuildOptions::default()
    };
    let stores = dirs
        .iter()
        .map(|d| BlobStore::open(d.blob_dir(), d.out.join(TMP_DIR)).ok())
        .collect::<Option<Vec<_>>>()?;
    let specs: Vec<LayerSpec> = request
        .layers
        .iter()
        .map(|(_, paths)| spec(request, paths))
        .collect();
    let store_refs: Vec<&BlobStore> = stores.iter().collect();
    let built = layer::build_layers_into(&specs, &store_refs, &opts, &Progress::new()).ok()?;
    for (i, (d, layer)) in dirs.iter().zip(&built).enumerate() {
        let doc = layer_json(media_type, layer);
        if write_atomic(&d.out.join("layer.json"), doc.as_bytes()).is_none() {
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

/// `layer_specs.store_paths_spec`: store paths as they are (modes kept, owners root).
fn spec(request: &Request, paths: &[String]) -> LayerSpec {
    let mut spec = LayerSpec::new(EntryOptions {
        mtime: request.mtime,
        uid: 0,
        gid: 0,
        keep_setuid: true,
    });
    spec.add_dir("/nix", 0o755);
    spec.add_dir("/nix/store", 0o755);
    let mut paths = paths.to_vec();
    paths.sort();
    for p in paths {
        // Python: a directory that is not a symlink is a tree; anything else one path
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            spec.add_tree(p.clone(), p);
        } else {
            spec.add_path(p.clone(), p);
        }
    }
    for rule in &request.perms {
        spec.add_perm_rule(rule.clone());
    }
    spec
}

/// layer_dir.write_layer_dir's canonical JSON (sorted keys, no whitespace).
fn layer_json(media_type: &str, built: &LayerResult) -> String {
    format!(
        "{{\"descriptor\":{{\"digest\":\"{}\",\"mediaType\":\"{media_type}\",\"size\":{}}},\"diffId\":\"{}\",\"uncompressedSize\":{}}}",
        built.digest, built.size, built.diff_id, built.uncompressed_size
    )
}

/// Write `path` through a temporary file in its directory, synced, then renamed over it.
fn write_atomic(path: &Path, data: &[u8]) -> Option<()> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let tmp = dir.join(format!(".{name}.{}.native.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-app-1.0";

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_the_argv_of_a_store_path_job() {
        let r = parse(&args(&[
            "--out",
            "layer",
            "--mtime",
            "1700000000",
            "--check-arch",
            "amd64",
            "--compression",
            "zstd",
            "--level",
            "5",
            "--perms",
            "/nix/store/.*/bin(/.*)?=0750:1234:2345",
            "--perms",
            "x=:0:0",
            "--store-path",
            P,
        ]))
        .unwrap();
        assert_eq!((r.mtime, r.level), (1_700_000_000, Some(5)));
        assert_eq!(r.machine.as_deref(), Some("amd64"));
        assert_eq!(r.perms[0].pattern, "/nix/store/.*/bin(/.*)?");
        assert_eq!(
            (r.perms[0].mode, r.perms[0].uid, r.perms[0].gid),
            (Some(0o750), Some(1234), Some(2345))
        );
        assert_eq!((r.perms[1].mode, r.perms[1].uid), (None, Some(0)));
        assert_eq!(r.layers, vec![("layer".to_string(), vec![P.to_string()])]);
    }

    #[test]
    fn parses_a_batch_each_store_path_of_the_out_before_it() {
        const Q: &str = "/nix/store/1123456789abcdfghijklmnpqrsvwxyz-lib-2.0";
        let r = parse(&args(&[
            "--out",
            "layer1",
            "--mtime",
            "1",
            "--store-path",
            P,
            "--store-path",
            Q,
            "--out",
            "layer2",
            "--store-path",
            Q,
        ]))
        .unwrap();
        assert_eq!(
            r.layers,
            vec![
                ("layer1".to_string(), vec![P.to_string(), Q.to_string()]),
                ("layer2".to_string(), vec![Q.to_string()]),
            ]
        );
        let head = ["--out", "a", "--mtime", "1", "--store-path", P];
        for (before, after) in [
            (&[][..], &["--out", "b"][..]), // an --out without store paths
            (&[], &["--out", "a", "--store-path", P]), // an --out given twice
            (&["--store-path", P], &[]),    // a store path before any --out
        ] {
            let bad: Vec<&str> = [before, &head[..], after].concat();
            assert!(parse(&args(&bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn leaves_everything_else_to_python() {
        let base = ["--out", "layer", "--mtime", "1", "--store-path", P];
        assert!(parse(&args(&base)).is_some());
        for extra in [
            &["--copy-to-root", P][..],
            &["--snapshotter", "x"],
            &["--account", "app:1:app:1"],
            &["--perms", "x="],
            &["--perms", "x=0755:app:app"],
            &["--perms", "x=0755:1"],
            &["--perms", "x=75"],
            &["--perms", "a\n=0755"],
            &["--level", "-1"],
            &["--mtime", "2"],
            &["--check-arch", "mips"],
            &["--compression", "lz4"],
            &[
                "--store-path",
                "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-app/",
            ],
            &[
                "--store-path",
                "/nix/store/0123456789abcdefghijklmnpqrsvwxyz-a",
            ],
            &["--threads", "2"],
            &["--out=x", "y"],
            &["--help"],
        ] {
            let mut a = base.to_vec();
            a.extend_from_slice(extra);
            assert!(parse(&args(&a)).is_none(), "{extra:?}");
        }
        assert!(parse(&args(&[
            "--out",
            "./layer",
            "--mtime",
            "1",
            "--store-path",
            P
        ]))
        .is_none());
        assert!(parse(&args(&["--out", "layer", "--mtime", "1"])).is_none());
    }

    #[test]
    fn outs_resolving_to_one_directory_are_left_to_python() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |rel: &str| tmp.path().join(rel).to_str().unwrap().to_string();
        fs::create_dir(tmp.path().join("x")).unwrap();
        fs::create_dir(tmp.path().join("made")).unwrap();
        std::os::unix::fs::symlink("made", tmp.path().join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join("dangling")).unwrap();
        let request = |a: &str, b: &str| {
            parse(&args(&[
                "--out",
                a,
                "--mtime",
                "1",
                "--store-path",
                P,
                "--out",
                b,
                "--store-path",
                P,
            ]))
            .unwrap()
        };
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
