//! The filesystem tree a bootstrap describes: named nodes pointing at inodes (hard links
//! share one), inodes pointing at chunks.

use std::collections::BTreeMap;

use super::chunk_table::ChunkInfo;
use crate::error::{Error, Result};
use crate::file_mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inode {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// File size (regular files), target length (symlinks); directories get theirs at layout.
    pub size: u64,
    /// Encoded device number (character and block devices, fifos).
    pub rdev: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub target: Vec<u8>,
    /// Indexes into [`Tree::chunks`], in file order.
    pub chunks: Vec<u32>,
}

impl Inode {
    pub fn dir(mode: u32, uid: u32, gid: u32, mtime: u64) -> Self {
        Inode {
            mode: S_IFDIR | (mode & 0o7777),
            uid,
            gid,
            mtime,
            ..Inode::default()
        }
    }

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub fn is_reg(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: Vec<u8>,
    pub parent: usize,
    /// Children by name: iteration is the bytewise order RAFS needs.
    pub children: BTreeMap<Vec<u8>, usize>,
    pub inode: usize,
    /// A directory made up for a missing parent: in a merge it does not override a lower
    /// layer's directory.
    pub implicit: bool,
}

/// Node 0 is the root directory.
#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub inodes: Vec<Inode>,
    pub chunks: Vec<ChunkInfo>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

pub const ROOT: usize = 0;

impl Tree {
    pub fn new() -> Self {
        Tree {
            nodes: vec![Node {
                name: b"/".to_vec(),
                parent: ROOT,
                children: BTreeMap::new(),
                inode: 0,
                implicit: true,
            }],
            inodes: vec![Inode::dir(0o755, 0, 0, 0)],
            chunks: Vec::new(),
        }
    }

    pub fn inode_of(&self, node: usize) -> &Inode {
        &self.inodes[self.nodes[node].inode]
    }

    pub fn is_dir(&self, node: usize) -> bool {
        self.inode_of(node).is_dir()
    }

    /// The names from the root down to a node (none for the root).
    pub fn components(&self, mut node: usize) -> Vec<&[u8]> {
        let mut parts = Vec::new();
        while node != ROOT {
            parts.push(self.nodes[node].name.as_slice());
            node = self.nodes[node].parent;
        }
        parts.reverse();
        parts
    }

    /// "/a/b" of a node.
    pub fn path_of(&self, node: usize) -> String {
        let parts: Vec<String> = self
            .components(node)
            .into_iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!("/{}", parts.join("/"))
    }

    pub fn lookup(&self, components: &[&[u8]]) -> Option<usize> {
        let mut cur = ROOT;
        for c in components {
            cur = *self.nodes[cur].children.get(*c)?;
        }
        Some(cur)
    }

    fn new_node(&mut self, parent: usize, name: &[u8], inode: usize, implicit: bool) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_vec(),
            parent,
            children: BTreeMap::new(),
            inode,
            implicit,
        });
        self.nodes[parent].children.insert(name.to_vec(), id);
        id
    }

    /// Unlink a node (and so its subtree) from its parent.
    pub fn detach(&mut self, node: usize) {
        if node == ROOT {
            return;
        }
        let parent = self.nodes[node].parent;
        let name = self.nodes[node].name.clone();
        if self.nodes[parent].children.get(&name) == Some(&node) {
            self.nodes[parent].children.remove(&name);
        }
    }

    /// The directory that will hold `components`' last element, creating missing parents
    /// as implicit directories. A parent that exists but is not a directory is an error.
    fn parent_dir(&mut self, components: &[&[u8]]) -> Result<usize> {
        let mut cur = ROOT;
        for (i, c) in components[..components.len().saturating_sub(1)]
            .iter()
            .enumerate()
        {
            cur = match self.nodes[cur].children.get(*c).copied() {
                Some(n) if self.is_dir(n) => n,
                Some(n) => {
                    let here = join(&components[..=i]);
                    let what = if self.inode_of(n).is_symlink() {
                        match self.symlink_loop(n) {
                            Some(chain) => format!("a symlink in a loop ({chain})"),
                            None => "a symlink (entries must not be written through symlinks)"
                                .to_string(),
                        }
                    } else {
                        "not a directory".to_string()
                    };
                    return Err(Error::input(format!(
                        "'{}': parent '{here}' is {what}",
                        join(components)
                    )));
                }
                None => {
                    let ino = self.inodes.len();
                    self.inodes.push(Inode::dir(0o755, 0, 0, 0));
                    self.new_node(cur, c, ino, true)
                }
            };
        }
        Ok(cur)
    }

    /// Add an entry. The same path again replaces the earlier entry; a directory that
    /// replaces a directory keeps its children.
    pub fn insert(&mut self, components: &[&[u8]], inode: Inode) -> Result<usize> {
        let ino = self.inodes.len();
        self.inodes.push(inode);
        self.insert_node(components, ino, false)
    }

    /// Add another name for an existing entry's inode (a hard link).
    pub fn insert_link(&mut self, components: &[&[u8]], target: &[&[u8]]) -> Result<usize> {
        let t = self.lookup(target).ok_or_else(|| {
            Error::input(format!(
                "hard link '{}' points to '{}', which is not earlier in the layer",
                join(components),
                join(target)
            ))
        })?;
        if self.is_dir(t) {
            return Err(Error::input(format!(
                "hard link '{}' points to the directory '{}'",
                join(components),
                join(target)
            )));
        }
        let ino = self.nodes[t].inode;
        self.insert_node(components, ino, false)
    }

    /// Place inode `ino` at `components` (see [`Tree::insert`]).
    pub fn insert_node(
        &mut self,
        components: &[&[u8]],
        ino: usize,
        implicit: bool,
    ) -> Result<usize> {
        let Some(name) = components.last() else {
            if !self.inodes[ino].is_dir() {
                return Err(Error::input("the root entry ('./') is not a directory"));
            }
            self.nodes[ROOT].inode = ino;
            self.nodes[ROOT].implicit = implicit;
            return Ok(ROOT);
        };
        let parent = self.parent_dir(components)?;
        if let Some(old) = self.nodes[parent].children.get(*name).copied() {
            if self.is_dir(old) && self.inodes[ino].is_dir() {
                if !implicit {
                    self.nodes[old].inode = ino;
                    self.nodes[old].implicit = false;
                }
                return Ok(old);
            }
            self.detach(old);
        }
        Ok(self.new_node(parent, name, ino, implicit))
    }

    /// If `node` is a symlink whose chain of targets (inside this tree) comes back to
    /// itself, the chain as text.
    pub fn symlink_loop(&self, node: usize) -> Option<String> {
        let mut seen = vec![node];
        let mut cur = node;
        for _ in 0..40 {
            let inode = self.inode_of(cur);
            if !inode.is_symlink() {
                return None;
            }
            let next = self.resolve_from(self.nodes[cur].parent, &inode.target)?;
            if seen.contains(&next) {
                seen.push(next);
                let chain: Vec<String> = seen.iter().map(|&n| self.path_of(n)).collect();
                return Some(chain.join(" -> "));
            }
            seen.push(next);
            cur = next;
        }
        None
    }

    /// Lexical resolution of a symlink target relative to directory `dir` (no symlinks
    /// followed on the way).
    fn resolve_from(&self, dir: usize, target: &[u8]) -> Option<usize> {
        let mut cur = if target.starts_with(b"/") { ROOT } else { dir };
        for c in target.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => cur = self.nodes[cur].parent,
                name => cur = *self.nodes[cur].children.get(name)?,
            }
        }
        Some(cur)
    }

    /// Every name reachable from the root is one a directory can hold: not empty, `.` or
    /// `..`, no `/` or NUL, at most 255 bytes (so no entry can lie outside the root).
    pub fn check_names(&self) -> Result<()> {
        for n in self.live_nodes().into_iter().filter(|&n| n != ROOT) {
            let name = &self.nodes[n].name;
            let bad = matches!(name.as_slice(), b"" | b"." | b"..")
                || name.len() > 255
                || name.iter().any(|&b| b == b'/' || b == 0);
            if bad {
                return Err(Error::Corrupt(format!(
                    "invariant: '{}' is not a name a directory can hold",
                    String::from_utf8_lossy(name).escape_debug()
                )));
            }
        }
        Ok(())
    }

    /// Nodes reachable from the root, parents before children, siblings by name.
    pub fn live_nodes(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.nodes[n].children.values().rev());
        }
        out
    }
}

pub fn join(components: &[&[u8]]) -> String {
    let parts: Vec<String> = components
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32) -> Inode {
        Inode {
            mode: S_IFREG | mode,
            ..Inode::default()
        }
    }

    #[test]
    fn implicit_parents_replacement_and_links() {
        let mut t = Tree::new();
        t.insert(&[b"a", b"b", b"f"], file(0o644)).unwrap();
        let a = t.lookup(&[b"a"]).unwrap();
        assert!(t.nodes[a].implicit);
        t.insert(&[b"a"], Inode::dir(0o700, 1, 1, 5)).unwrap();
        assert!(!t.nodes[a].implicit);
        assert_eq!(t.inode_of(a).mode, S_IFDIR | 0o700);
        assert!(t.lookup(&[b"a", b"b", b"f"]).is_some());
        t.insert_link(&[b"h"], &[b"a", b"b", b"f"]).unwrap();
        assert_eq!(
            t.nodes[t.lookup(&[b"h"]).unwrap()].inode,
            t.nodes[t.lookup(&[b"a", b"b", b"f"]).unwrap()].inode
        );
        let e = t
            .insert_link(&[b"x"], &[b"missing"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not earlier"), "{e}");
        // A file replacing a directory drops the subtree.
        t.insert(&[b"a", b"b"], file(0o600)).unwrap();
        assert!(t.lookup(&[b"a", b"b", b"f"]).is_none());
        assert_eq!(t.path_of(t.lookup(&[b"a", b"b"]).unwrap()), "/a/b");
    }

    #[test]
    fn names_outside_a_directory_are_an_invariant_error() {
        for bad in [&b".."[..], b".", b"", b"a/b", b"nul\0", &[b'n'; 256]] {
            let mut t = Tree::new();
            t.insert(&[b"ok"], file(0o644)).unwrap();
            t.insert(&[b"d", bad], file(0o644)).unwrap();
            let e = t.check_names().unwrap_err().to_string();
            assert!(e.contains("invariant"), "{e}");
            let boot = super::super::bootstrap::build(&super::super::bootstrap::BootstrapSpec {
                tree: &t,
                blobs: &[],
                blob_index: &std::collections::HashMap::new(),
                chunk_size: 4096,
                flags: 0,
                prefetch: &[],
            });
            assert!(boot.is_err(), "a bootstrap with {bad:?} was built");
        }
        let mut t = Tree::new();
        t.insert(&[b"d", &[b'n'; 255]], file(0o644)).unwrap();
        assert!(t.check_names().is_ok());
    }

    #[test]
    fn writing_through_symlinks_is_refused() {
        let mut t = Tree::new();
        let link = |target: &[u8]| Inode {
            mode: S_IFLNK | 0o777,
            target: target.to_vec(),
            size: target.len() as u64,
            ..Inode::default()
        };
        t.insert(&[b"l1"], link(b"l2")).unwrap();
        t.insert(&[b"l2"], link(b"./l1")).unwrap();
        let e = t
            .insert(&[b"l1", b"f"], file(0o644))
            .unwrap_err()
            .to_string();
        assert!(e.contains("symlink in a loop (/l1 -> /l2 -> /l1)"), "{e}");
        t.insert(&[b"d"], Inode::dir(0o755, 0, 0, 0)).unwrap();
        t.insert(&[b"ok"], link(b"d")).unwrap();
        let e = t
            .insert(&[b"ok", b"f"], file(0o644))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a symlink (entries must not"), "{e}");
    }
}
