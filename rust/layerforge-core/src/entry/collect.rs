//! Turning a [`LayerSpec`] into the sorted entry list: walking trees (never following
//! symlinks), refusing what cannot be archived, resolving duplicate destinations,
//! synthesising missing parent directories and detecting hard links.

use std::collections::btree_map;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::path::{ancestors, join, normalize_dest, sort_key};
use super::{Content, Entry, EntryOptions, Kind, LayerSpec, PermRule, SpecItem};
use crate::error::{Error, Result};

/// Mode of directories nobody described (parents of deeper entries).
const SYNTHESISED_DIR_MODE: u32 = 0o755;
const SETID_BITS: u32 = 0o6000;

#[derive(Debug, Clone)]
enum Origin {
    Disk(PathBuf),
    Synthetic,
    Parent,
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Disk(p) => format!("from '{}'", p.display()),
            Origin::Synthetic => "as a generated entry".to_owned(),
            Origin::Parent => "as a parent directory".to_owned(),
        }
    }
}

struct Node {
    entry: Entry,
    origin: Origin,
    /// (device, inode) of a disk file with more than one link: hard-link candidates.
    inode: Option<(u64, u64)>,
}

impl LayerSpec {
    /// Resolve the spec into entries sorted by destination (component-wise), parents first.
    pub fn collect(&self) -> Result<Vec<Entry>> {
        let mut c = Collector {
            opts: self.options,
            nodes: BTreeMap::new(),
        };
        for item in &self.items {
            c.add_item(item)?;
        }
        c.synthesise_parents()?;
        let mut entries = c.finish();
        apply_perm_rules(&self.perm_rules, &mut entries)?;
        Ok(entries)
    }
}

/// Apply `--perms`-style overrides. Patterns are anchored: they must match the whole
/// absolute path of an entry (directories without a trailing slash).
fn apply_perm_rules(rules: &[PermRule], entries: &mut [Entry]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let compiled = rules
        .iter()
        .map(|r| {
            regex::Regex::new(&format!("^(?:{})$", r.pattern))
                .map(|re| (re, r))
                .map_err(|e| {
                    Error::input(format!("invalid permission pattern '{}': {e}", r.pattern))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut abs = String::new();
    for e in entries.iter_mut() {
        abs.clear();
        abs.push('/');
        abs.push_str(&e.path);
        for (re, rule) in &compiled {
            if re.is_match(&abs) {
                if let Some(m) = rule.mode {
                    if !matches!(e.kind, Kind::Symlink { .. }) {
                        e.mode = m & 0o7777;
                    }
                }
                if let Some(u) = rule.uid {
                    e.uid = u;
                }
                if let Some(g) = rule.gid {
                    e.gid = g;
                }
            }
        }
    }
    Ok(())
}

struct Collector {
    opts: EntryOptions,
    nodes: BTreeMap<Vec<u8>, Node>,
}

impl Collector {
    fn add_item(&mut self, item: &SpecItem) -> Result<()> {
        match item {
            SpecItem::Path { src, dest } => {
                let dest = non_root(dest)?;
                let meta =
                    fs::symlink_metadata(src).map_err(|e| Error::io_path("cannot read", src, e))?;
                let node = self.disk_node(src, dest, &meta)?;
                self.insert(node)
            }
            SpecItem::Tree { src, dest } => {
                let dest = normalize_dest(dest)?;
                // The root of a tree is the one path we follow if it is a symlink: the user named it.
                let meta = fs::metadata(src).map_err(|e| Error::io_path("cannot read", src, e))?;
                if !meta.is_dir() {
                    return Err(Error::input(format!(
                        "'{}' is not a directory",
                        src.display()
                    )));
                }
                if !dest.is_empty() {
                    let node = self.disk_node(src, dest.clone(), &meta)?;
                    self.insert(node)?;
                }
                self.walk(src, &dest)
            }
            SpecItem::Dir { dest, mode } => {
                let dest = normalize_dest(dest)?;
                if dest.is_empty() {
                    return Ok(()); // the image root is implicit
                }
                let entry = self.entry(dest, Kind::Dir, *mode);
                self.insert(Node {
                    entry,
                    origin: Origin::Synthetic,
                    inode: None,
                })
            }
            SpecItem::Symlink { dest, target } => {
                let dest = non_root(dest)?;
                if target.is_empty() || target.contains('\0') {
                    return Err(Error::input(format!(
                        "symlink '/{dest}' has an empty or NUL-containing target"
                    )));
                }
                let entry = self.entry(
                    dest,
                    Kind::Symlink {
                        target: target.clone(),
                    },
                    0o777,
                );
                self.insert(Node {
                    entry,
                    origin: Origin::Synthetic,
                    inode: None,
                })
            }
            SpecItem::Node { dest, kind, mode } => {
                let dest = non_root(dest)?;
                let entry = self.entry(dest, kind.clone(), *mode);
                self.insert(Node {
                    entry,
                    origin: Origin::Synthetic,
                    inode: None,
                })
            }
            SpecItem::File { dest, data, mode } => {
                let dest = non_root(dest)?;
                let kind = Kind::File {
                    content: Content::Bytes(data.clone()),
                    size: data.len() as u64,
                };
                let entry = self.entry(dest, kind, *mode);
                self.insert(Node {
                    entry,
                    origin: Origin::Synthetic,
                    inode: None,
                })
            }
        }
    }

    fn entry(&self, path: String, kind: Kind, mode: u32) -> Entry {
        let mut mode = mode & 0o7777;
        if !self.opts.keep_setuid {
            mode &= !SETID_BITS;
        }
        if matches!(kind, Kind::Symlink { .. }) {
            mode = 0o777;
        }
        Entry {
            path,
            kind,
            mode,
            uid: self.opts.uid,
            gid: self.opts.gid,
            mtime: self.opts.mtime,
        }
    }

    fn disk_node(&self, src: &Path, dest: String, meta: &Metadata) -> Result<Node> {
        let ft = meta.file_type();
        let mut inode = None;
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            check_readable(src)?;
            if meta.nlink() > 1 {
                inode = Some((meta.dev(), meta.ino()));
            }
            Kind::File {
                content: Content::Disk(src.to_path_buf()),
                size: meta.len(),
            }
        } else if ft.is_symlink() {
            let target =
                fs::read_link(src).map_err(|e| Error::io_path("cannot read symlink", src, e))?;
            let target = target.into_os_string().into_string().map_err(|t| {
                Error::input(format!(
                    "symlink '{}' has a target that is not valid UTF-8: {:?}",
                    src.display(),
                    t
                ))
            })?;
            Kind::Symlink { target }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            let (major, minor) = split_dev(meta.rdev());
            Kind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = split_dev(meta.rdev());
            Kind::BlockDevice { major, minor }
        } else if ft.is_socket() {
            return Err(Error::input(format!(
                "cannot store socket '{}' in a layer: sockets cannot be archived",
                src.display()
            )));
        } else {
            return Err(Error::input(format!(
                "cannot store '{}' in a layer: unknown file type",
                src.display()
            )));
        };
        Ok(Node {
            entry: self.entry(dest, kind, meta.mode()),
            origin: Origin::Disk(src.to_path_buf()),
            inode,
        })
    }

    fn walk(&mut self, dir: &Path, dest: &str) -> Result<()> {
        let rd = fs::read_dir(dir).map_err(|e| Error::io_path("cannot list directory", dir, e))?;
        let mut subdirs = Vec::new();
        for dent in rd {
            let dent = dent.map_err(|e| Error::io_path("cannot list directory", dir, e))?;
            let src = dent.path();
            let name = dent.file_name().into_string().map_err(|n| {
                Error::input(format!(
                    "file name {:?} in '{}' is not valid UTF-8",
                    n,
                    dir.display()
                ))
            })?;
            let child = join(dest, &name);
            let meta =
                fs::symlink_metadata(&src).map_err(|e| Error::io_path("cannot read", &src, e))?;
            let is_dir = meta.is_dir();
            let node = self.disk_node(&src, child.clone(), &meta)?;
            self.insert(node)?;
            if is_dir {
                subdirs.push((src, child));
            }
        }
        for (src, child) in subdirs {
            self.walk(&src, &child)?;
        }
        Ok(())
    }

    fn insert(&mut self, node: Node) -> Result<()> {
        match self.nodes.entry(sort_key(&node.entry.path)) {
            btree_map::Entry::Vacant(v) => {
                v.insert(node);
                Ok(())
            }
            btree_map::Entry::Occupied(mut o) => {
                let old = o.get();
                if old.entry.kind.is_dir() && node.entry.kind.is_dir() {
                    // Directories merge; the later description sets the metadata.
                    o.insert(node);
                    Ok(())
                } else if old.entry == node.entry {
                    Ok(())
                } else {
                    Err(Error::input(format!(
                        "destination '/{}' is given twice: {} {} and {} {}",
                        node.entry.path,
                        old.entry.kind.describe(),
                        old.origin.describe(),
                        node.entry.kind.describe(),
                        node.origin.describe()
                    )))
                }
            }
        }
    }

    fn synthesise_parents(&mut self) -> Result<()> {
        let mut checked: HashSet<String> = HashSet::new();
        let mut missing: Vec<String> = Vec::new();
        for node in self.nodes.values() {
            let path = &node.entry.path;
            for anc in ancestors(path) {
                if !checked.insert(anc.to_owned()) {
                    continue;
                }
                match self.nodes.get(&sort_key(anc)) {
                    Some(parent) if parent.entry.kind.is_dir() => {}
                    Some(parent) => {
                        return Err(Error::input(format!(
                            "'/{anc}' is a {} ({}) but '/{path}' is placed inside it",
                            parent.entry.kind.describe(),
                            parent.origin.describe().trim_start_matches("as ")
                        )))
                    }
                    None => missing.push(anc.to_owned()),
                }
            }
        }
        for path in missing {
            let entry = self.entry(path, Kind::Dir, SYNTHESISED_DIR_MODE);
            self.nodes.insert(
                sort_key(&entry.path),
                Node {
                    entry,
                    origin: Origin::Parent,
                    inode: None,
                },
            );
        }
        Ok(())
    }

    /// Emit entries in order; later paths of an already-seen inode become hard links to the first.
    fn finish(self) -> Vec<Entry> {
        let mut first_path: HashMap<(u64, u64), String> = HashMap::new();
        self.nodes
            .into_values()
            .map(|node| {
                let mut entry = node.entry;
                if let Some(ino) = node.inode {
                    match first_path.get(&ino) {
                        Some(target) => {
                            entry.kind = Kind::Hardlink {
                                target: target.clone(),
                            }
                        }
                        None => {
                            first_path.insert(ino, entry.path.clone());
                        }
                    }
                }
                entry
            })
            .collect()
    }
}

/// Fail before any archive byte is written if a file cannot be opened for reading
/// (the tar stream opens it much later, possibly minutes into a build).
fn check_readable(src: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(src.as_os_str().as_bytes())
        .map_err(|_| Error::input(format!("path {:?} contains a NUL byte", src)))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK) } != 0 {
        return Err(Error::io_path(
            "cannot read",
            src,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn non_root(dest: &str) -> Result<String> {
    let d = normalize_dest(dest)?;
    if d.is_empty() {
        return Err(Error::input(format!(
            "destination '{dest}' is the image root; only a directory tree can be placed there"
        )));
    }
    Ok(d)
}

/// Linux `dev_t` encoding (glibc's gnu_dev_major / gnu_dev_minor).
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn opts() -> EntryOptions {
        EntryOptions {
            mtime: 42,
            ..EntryOptions::default()
        }
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn tree_is_sorted_with_parents_and_metadata_normalised() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/b/f"), b"x").unwrap();
        fs::write(r.join("a-b"), b"y").unwrap();
        fs::set_permissions(r.join("a-b"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/nonexistent/target", r.join("link")).unwrap();
        let mut spec = LayerSpec::new(opts());
        spec.add_tree(r, "/opt/app");
        let e = spec.collect().unwrap();
        assert_eq!(
            paths(&e),
            vec![
                "opt",
                "opt/app",
                "opt/app/a",
                "opt/app/a/b",
                "opt/app/a/b/f",
                "opt/app/a-b",
                "opt/app/link"
            ]
        );
        assert!(e.iter().all(|x| x.mtime == 42 && x.uid == 0 && x.gid == 0));
        assert_eq!(e[0].mode, SYNTHESISED_DIR_MODE);
        assert_eq!(e[5].mode, 0o755, "setuid dropped unless asked");
        assert_eq!(
            e[6].kind,
            Kind::Symlink {
                target: "/nonexistent/target".into()
            }
        );
    }

    #[test]
    fn keeps_setuid_when_asked() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("su");
        fs::write(&f, b"").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
        let mut spec = LayerSpec::new(EntryOptions {
            keep_setuid: true,
            ..opts()
        });
        spec.add_path(&f, "bin/su");
        let e = spec.collect().unwrap();
        assert_eq!(e[1].mode, 0o4755);
    }

    #[test]
    fn hardlinks_point_at_first_in_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::write(r.join("z"), b"data").unwrap();
        fs::hard_link(r.join("z"), r.join("a")).unwrap();
        let mut spec = LayerSpec::new(opts());
        spec.add_tree(r, "/");
        let e = spec.collect().unwrap();
        assert_eq!(paths(&e), vec!["a", "z"]);
        assert!(matches!(e[0].kind, Kind::File { size: 4, .. }));
        assert_eq!(e[1].kind, Kind::Hardlink { target: "a".into() });
    }

    #[test]
    fn conflicting_destinations_are_refused() {
        let mut spec = LayerSpec::new(opts());
        spec.add_file("etc/x", b"1".to_vec(), 0o644);
        spec.add_file("etc/x", b"2".to_vec(), 0o644);
        let err = spec.collect().unwrap_err().to_string();
        assert!(err.contains("'/etc/x' is given twice"), "{err}");
    }

    #[test]
    fn identical_duplicates_and_dirs_merge() {
        let mut spec = LayerSpec::new(opts());
        spec.add_file("etc/x", b"1".to_vec(), 0o644);
        spec.add_file("etc/x", b"1".to_vec(), 0o644);
        spec.add_dir("etc", 0o700);
        spec.add_dir("etc", 0o750);
        let e = spec.collect().unwrap();
        assert_eq!(paths(&e), vec!["etc", "etc/x"]);
        assert_eq!(e[0].mode, 0o750);
    }

    #[test]
    fn file_used_as_directory_is_refused() {
        let mut spec = LayerSpec::new(opts());
        spec.add_file("a", b"1".to_vec(), 0o644);
        spec.add_file("a/b", b"2".to_vec(), 0o644);
        let err = spec.collect().unwrap_err().to_string();
        assert!(err.contains("'/a' is a file"), "{err}");
    }

    #[test]
    fn sockets_are_refused_with_their_path() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let mut spec = LayerSpec::new(opts());
        spec.add_tree(t.path(), "/");
        let err = spec.collect().unwrap_err().to_string();
        assert!(
            err.contains("cannot store socket") && err.contains("s.sock"),
            "{err}"
        );
    }

    #[test]
    fn missing_source_names_the_path() {
        let mut spec = LayerSpec::new(opts());
        spec.add_path("/definitely/not/here", "x");
        let err = spec.collect().unwrap_err().to_string();
        assert!(err.contains("/definitely/not/here"), "{err}");
    }

    #[test]
    fn perm_rules_match_whole_paths_and_override_in_order() {
        let mut spec = LayerSpec::new(opts());
        spec.add_file("nix/store/abc-app/bin/app", b"x".to_vec(), 0o555);
        spec.add_file("nix/store/abc-app/etc/conf", b"y".to_vec(), 0o444);
        spec.add_perm_rule(PermRule {
            pattern: "/nix/store/[^/]+-app/bin/.*".into(),
            mode: Some(0o4755),
            uid: Some(1000),
            gid: None,
        });
        spec.add_perm_rule(PermRule {
            pattern: "/nix/store/abc-app/bin/app".into(),
            mode: None,
            uid: None,
            gid: Some(50),
        });
        spec.add_perm_rule(PermRule {
            pattern: "etc/conf".into(), // not anchored at '/': matches nothing
            mode: Some(0o600),
            uid: None,
            gid: None,
        });
        let e = spec.collect().unwrap();
        let app = e.iter().find(|x| x.path.ends_with("bin/app")).unwrap();
        assert_eq!((app.mode, app.uid, app.gid), (0o4755, 1000, 50));
        let conf = e.iter().find(|x| x.path.ends_with("etc/conf")).unwrap();
        assert_eq!((conf.mode, conf.uid, conf.gid), (0o444, 0, 0));
        let bad = LayerSpec {
            perm_rules: vec![PermRule {
                pattern: "(".into(),
                mode: None,
                uid: None,
                gid: None,
            }],
            ..LayerSpec::new(opts())
        };
        assert!(bad
            .collect()
            .unwrap_err()
            .to_string()
            .contains("invalid permission pattern"));
    }

    #[test]
    fn splits_device_numbers() {
        // makedev(8, 1) and makedev(259, 65537), encoded the glibc way.
        assert_eq!(split_dev(0x801), (8, 1));
        let (major, minor) = (259u64, 65537u64);
        let dev = ((major & 0xfff) << 8)
            | ((major & 0xffff_f000) << 32)
            | (minor & 0xff)
            | ((minor & 0xffff_ff00) << 12);
        assert_eq!(split_dev(dev), (259, 65537));
    }
}
