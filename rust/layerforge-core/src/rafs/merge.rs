//! Stacking layer trees into one, as an overlay mount of the layers would show them:
//! whiteouts (`.wh.NAME`) remove lower entries, opaque markers (`.wh..wh..opq`) empty a
//! lower directory, a later entry replaces an earlier one, and a directory keeps its lower
//! children unless made opaque. Whiteout files themselves never reach the result.

use super::tree::{Tree, ROOT};
use super::whiteout::{classify, Whiteout};
use crate::error::Result;

/// Merge `layers` (lowest first). Chunk indexes of each layer are rebased onto the
/// concatenation of the layers' chunk arenas; hard links stay within their layer.
pub fn merge(layers: &[Tree]) -> Result<Tree> {
    let mut out = Tree::new();
    for layer in layers {
        let ino_base = out.inodes.len();
        let chunk_base = out.chunks.len() as u32;
        out.chunks.extend_from_slice(&layer.chunks);
        out.inodes.extend(layer.inodes.iter().map(|i| {
            let mut i = i.clone();
            for c in &mut i.chunks {
                *c += chunk_base;
            }
            i
        }));
        let order = layer.live_nodes();
        // Whiteouts apply to the lower layers only, so they go first.
        for &n in &order {
            let whiteout = match classify(&layer.nodes[n].name) {
                Some(w) if n != ROOT => w,
                _ => continue,
            };
            let mut path = layer.components(layer.nodes[n].parent);
            match whiteout {
                Whiteout::Opaque => {
                    if let Some(d) = out.lookup(&path) {
                        if out.is_dir(d) {
                            out.nodes[d].children.clear();
                        }
                    }
                }
                Whiteout::Of(name) => {
                    path.push(name);
                    if let Some(x) = out.lookup(&path) {
                        out.detach(x);
                    }
                }
            }
        }
        for &n in &order {
            if n != ROOT && classify(&layer.nodes[n].name).is_some() {
                continue;
            }
            let path = layer.components(n);
            out.insert_node(
                &path,
                ino_base + layer.nodes[n].inode,
                layer.nodes[n].implicit,
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tree::Inode;
    use super::*;
    use crate::file_mode::S_IFREG;

    fn file(size: u64) -> Inode {
        Inode {
            mode: S_IFREG | 0o644,
            size,
            ..Inode::default()
        }
    }

    fn paths(t: &Tree) -> Vec<String> {
        t.live_nodes().into_iter().map(|n| t.path_of(n)).collect()
    }

    #[test]
    fn whiteouts_opaque_and_replacement() {
        let mut l0 = Tree::new();
        l0.insert(&[b"etc"], Inode::dir(0o750, 0, 0, 9)).unwrap();
        l0.insert(&[b"etc", b"a"], file(1)).unwrap();
        l0.insert(&[b"etc", b"b"], file(2)).unwrap();
        l0.insert(&[b"opq", b"old"], file(3)).unwrap();
        l0.insert(&[b"gone", b"deep"], file(4)).unwrap();
        l0.insert(&[b".wh.ignored"], file(0)).unwrap();
        let mut l1 = Tree::new();
        l1.insert(&[b"etc", b".wh.a"], file(0)).unwrap();
        l1.insert(&[b"etc", b"b"], file(20)).unwrap();
        l1.insert(&[b"opq", b".wh..wh..opq"], file(0)).unwrap();
        l1.insert(&[b"opq", b"new"], file(5)).unwrap();
        l1.insert(&[b".wh.gone"], file(0)).unwrap();
        let m = merge(&[l0, l1]).unwrap();
        assert_eq!(
            paths(&m),
            ["/", "/etc", "/etc/b", "/opq", "/opq/new"].map(String::from)
        );
        let etc = m.lookup(&[b"etc"]).unwrap();
        // The implicit /etc of the upper layer keeps the lower directory's metadata.
        assert_eq!(m.inode_of(etc).mode & 0o777, 0o750);
        assert_eq!(m.inode_of(m.lookup(&[b"etc", b"b"]).unwrap()).size, 20);
    }
}
