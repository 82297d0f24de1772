//! Laying a tree out as a RAFS v6 bootstrap (see `rafs/mod.rs` for the format).
//!
//! ```text
//! 0..1024 zero | superblock | extended superblock | device slots | blob table (4 KiB-aligned)
//! | prefetch table | meta area: one unused block, then inodes (root nid 128), then
//! directory/symlink data blocks | chunk table (4 KiB-aligned) | padding to 4 KiB
//! ```
//!
//! Inodes are placed directory by directory (a directory, its non-directory children, then
//! its subdirectories recursively), every sibling list in bytewise name order, so the bytes
//! depend only on the tree.

use std::collections::{BTreeMap, HashMap};

use super::blob_table::{BlobEntry, BLOB_ENTRY_SIZE, FEATURE_INLINED_CHUNK_DIGEST};
use super::chunk_table::{ChunkInfo, CHUNK_ADDR_SIZE, CHUNK_ROW_SIZE};
use super::dirent::{self, file_type};
use super::inode::{
    chunk_format, encode_xattrs, xattr_icount, DiskInode, INODE_SIZE, LAYOUT_CHUNK_BASED,
    LAYOUT_FLAT_INLINE, LAYOUT_FLAT_PLAIN,
};
use super::superblock::{
    encode_device_slot, ExtSuperBlock, SuperBlock, DEVICE_SLOT_OFFSET, DEVICE_SLOT_SIZE,
    FLAG_HAS_XATTR, FLAG_INLINED_CHUNK_DIGEST,
};
use super::tree::{Tree, ROOT};
use super::{put_u32, round_up, BLOCK_SIZE};
use crate::error::{Error, Result};
use crate::rules::{RuleError, Setting};

/// Inode slots are 32 bytes; nid = (offset - meta_addr) / 32.
const SLOT: u64 = 32;
/// The first meta block is left unused so that no inode gets nid 0; the root gets 128.
const FIRST_INODE: u64 = BLOCK_SIZE;

pub struct BootstrapSpec<'a> {
    pub tree: &'a Tree,
    /// The blob table, in order.
    pub blobs: &'a [BlobEntry],
    /// Blob number used in `tree.chunks` -> index in `blobs`.
    pub blob_index: &'a HashMap<u32, u32>,
    pub chunk_size: u32,
    /// Compressor | digester | explicit uid/gid flags; xattr and chunk-digest flags are added.
    pub flags: u64,
    /// Paths (components) whose nids form the prefetch table.
    pub prefetch: &'a [Vec<Vec<u8>>],
}

/// Where one inode went.
struct Placed {
    node: usize,
    offset: u64,
    layout: u16,
    xattrs: Vec<u8>,
    /// Data size (directory d_size, symlink target length, file size).
    size: u64,
    /// Full data blocks stored outside the inode, and the virtual offset of the first.
    blocks: u64,
    data_offset: u64,
}

/// Blobs one RAFS v6 bootstrap can refer to: a chunk names its blob in 8 bits (device id
/// 1..=255, 0 being the bootstrap itself).
pub const MAX_BLOBS: usize = 255;
/// Chunks one blob can hold: a chunk's index in its blob has 24 bits.
pub const MAX_CHUNKS_PER_BLOB: usize = 1 << 24;

/// Chunk table rows: every distinct chunk, keyed (and so sorted) by digest, blob-table index
/// and index in its blob; the value is the chunk and its offset in the first file using it.
type ChunkRows = BTreeMap<([u8; 32], u32, u32), (ChunkInfo, u64)>;

pub fn build(spec: &BootstrapSpec<'_>) -> Result<Vec<u8>> {
    if spec.blobs.len() > MAX_BLOBS {
        return Err(Error::input(format!(
            "the image needs {} Nydus blobs, more than the {MAX_BLOBS} a RAFS v6 bootstrap can refer to",
            spec.blobs.len()
        )));
    }
    let tree = spec.tree;
    tree.check_names()?;
    let order = placement_order(tree);

    // 1. Sizes and inode offsets, then directory and symlink data blocks (virtual: the meta
    // area starts at 0).
    let meta = MetaArea::place(tree, &order)?;
    // 2. Tables in front of the meta area.
    let tables = Tables::lay_out(spec, &meta)?;
    // 3. Chunk table rows, after the meta area.
    let rows = chunk_rows(spec, &meta)?;
    let chunk_table_offset = round_up(tables.meta_addr + meta.end, BLOCK_SIZE);
    let chunk_table_size = rows.len() as u64 * CHUNK_ROW_SIZE as u64;
    let total = round_up(chunk_table_offset + chunk_table_size, BLOCK_SIZE);
    let mut image = vec![0u8; total as usize];

    // 4. Superblocks, devices, blob table, prefetch table.
    let ext = ExtSuperBlock {
        flags: image_flags(spec, meta.has_xattr),
        blob_table_offset: tables.blob_table_offset,
        blob_table_size: tables.blob_table_size as u32,
        chunk_size: spec.chunk_size,
        chunk_table_offset,
        chunk_table_size,
        prefetch_table_offset: if tables.prefetch_size() > 0 {
            tables.prefetch_offset
        } else {
            0
        },
        prefetch_table_size: tables.prefetch_size() as u32,
    };
    write_tables(&mut image, spec, &meta, &tables, &ext, order.len());
    // 5. Inodes and their data.
    write_inodes(&mut image, spec, &meta, &order, tables.meta_addr)?;
    // 6. The chunk table.
    let mut off = chunk_table_offset as usize;
    for ((_, local, _), (info, file_offset)) in &rows {
        info.encode_row(*local, *file_offset, &mut image[off..off + CHUNK_ROW_SIZE]);
        off += CHUNK_ROW_SIZE;
    }
    Ok(image)
}

/// Where the inodes and their data blocks go in the meta area (offsets relative to it).
struct MetaArea {
    /// Inodes in placement order, each once (hard links share theirs).
    placed: Vec<Placed>,
    /// Tree node -> index in `placed`.
    node_slot: HashMap<usize, usize>,
    /// Directory node -> its sorted entry names.
    dir_names: HashMap<usize, Vec<Vec<u8>>>,
    has_xattr: bool,
    /// Size of the meta area (4 KiB-aligned).
    end: u64,
}

impl MetaArea {
    fn place(tree: &Tree, order: &[usize]) -> Result<Self> {
        let mut placed: Vec<Placed> = Vec::new();
        let mut inode_slot: HashMap<usize, usize> = HashMap::new();
        let mut node_slot: HashMap<usize, usize> = HashMap::with_capacity(order.len());
        let mut dir_names: HashMap<usize, Vec<Vec<u8>>> = HashMap::new();
        let mut offset = FIRST_INODE;
        let mut has_xattr = false;
        // Inodes, in order; a directory's or symlink's data tail inline when it fits.
        for &n in order {
            let ino = tree.nodes[n].inode;
            if let Some(&slot) = inode_slot.get(&ino) {
                node_slot.insert(n, slot);
                continue;
            }
            let inode = &tree.inodes[ino];
            let xattrs = encode_xattrs(&inode.xattrs)
                .map_err(|e| Error::input(format!("'{}': {e}", tree.path_of(n))))?;
            has_xattr |= !xattrs.is_empty();
            let isz = INODE_SIZE + xattrs.len() as u64;
            offset = round_up(offset, SLOT);
            let (layout, size, blocks, need) = if inode.is_reg() {
                let need = round_up(isz, 8) + CHUNK_ADDR_SIZE as u64 * inode.chunks.len() as u64;
                (LAYOUT_CHUNK_BASED, inode.size, 0, need)
            } else if inode.is_dir() || inode.is_symlink() {
                let size = if inode.is_dir() {
                    let names = sorted_names(tree, n);
                    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
                    let s = dirent::dir_size(&refs);
                    dir_names.insert(n, names);
                    s
                } else {
                    inode.target.len() as u64
                };
                let tail = size % BLOCK_SIZE;
                if tail != 0 && isz + tail <= BLOCK_SIZE {
                    if offset % BLOCK_SIZE + isz + tail > BLOCK_SIZE {
                        offset = round_up(offset, BLOCK_SIZE);
                    }
                    (LAYOUT_FLAT_INLINE, size, size / BLOCK_SIZE, isz + tail)
                } else {
                    (LAYOUT_FLAT_PLAIN, size, size.div_ceil(BLOCK_SIZE), isz)
                }
            } else {
                (LAYOUT_FLAT_PLAIN, 0, 0, isz)
            };
            inode_slot.insert(ino, placed.len());
            node_slot.insert(n, placed.len());
            placed.push(Placed {
                node: n,
                offset,
                layout,
                xattrs,
                size,
                blocks,
                data_offset: 0,
            });
            offset += need;
        }
        // Directory and symlink data blocks after the inodes.
        let mut data = round_up(offset, BLOCK_SIZE);
        for p in &mut placed {
            if p.blocks > 0 {
                p.data_offset = data;
                data += p.blocks * BLOCK_SIZE;
            }
        }
        Ok(MetaArea {
            placed,
            node_slot,
            dir_names,
            has_xattr,
            end: data,
        })
    }

    /// The nid of a tree node: its inode's slot number in the meta area.
    fn nid(&self, node: usize) -> u64 {
        self.placed[self.node_slot[&node]].offset / SLOT
    }
}

/// The tables between the superblocks and the meta area (absolute offsets).
struct Tables {
    blob_table_offset: u64,
    blob_table_size: u64,
    prefetch_offset: u64,
    prefetch_nids: Vec<u32>,
    /// Where the meta area starts (0 for a bootstrap without blobs).
    meta_addr: u64,
}

impl Tables {
    fn lay_out(spec: &BootstrapSpec<'_>, meta: &MetaArea) -> Result<Self> {
        let n_blobs = spec.blobs.len() as u64;
        let blob_table_offset = round_up(
            DEVICE_SLOT_OFFSET as u64 + n_blobs * DEVICE_SLOT_SIZE as u64,
            BLOCK_SIZE,
        );
        let blob_table_size = n_blobs * BLOB_ENTRY_SIZE as u64;
        let prefetch_nids: Vec<u32> = if n_blobs > 0 {
            spec.prefetch
                .iter()
                .map(|p| {
                    let comps: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                    let node = spec.tree.lookup(&comps).ok_or_else(|| {
                        let path = format!("/{}", super::tree::join(&comps));
                        Error::Rule(RuleError::text(
                            Setting::Prefetch,
                            &path,
                            "is not in the image",
                        ))
                    })?;
                    Ok(meta.nid(node) as u32)
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let prefetch_offset = blob_table_offset + blob_table_size;
        let prefetch_size = prefetch_nids.len() as u64 * 4;
        let meta_addr = if n_blobs > 0 {
            round_up(prefetch_offset + prefetch_size, BLOCK_SIZE)
        } else {
            0
        };
        Ok(Tables {
            blob_table_offset,
            blob_table_size,
            prefetch_offset,
            prefetch_nids,
            meta_addr,
        })
    }

    fn prefetch_size(&self) -> u64 {
        self.prefetch_nids.len() as u64 * 4
    }
}

/// The superblock flags: the caller's, plus xattrs and inlined chunk digests when present.
fn image_flags(spec: &BootstrapSpec<'_>, has_xattr: bool) -> u64 {
    let all_digests = !spec.blobs.is_empty()
        && spec
            .blobs
            .iter()
            .all(|b| b.features & FEATURE_INLINED_CHUNK_DIGEST != 0);
    let mut flags = spec.flags;
    if has_xattr {
        flags |= FLAG_HAS_XATTR;
    }
    if all_digests {
        flags |= FLAG_INLINED_CHUNK_DIGEST;
    }
    flags
}

/// Every distinct chunk of the placed files, with the offset in the first file using it.
fn chunk_rows(spec: &BootstrapSpec<'_>, meta: &MetaArea) -> Result<ChunkRows> {
    let tree = spec.tree;
    let mut rows = ChunkRows::new();
    for p in &meta.placed {
        let inode = tree.inode_of(p.node);
        for (k, &c) in inode.chunks.iter().enumerate() {
            let info = tree.chunks[c as usize];
            let local = local_blob(spec, &info, tree, p.node)?;
            rows.entry((info.digest, local, info.index))
                .or_insert((info, k as u64 * u64::from(spec.chunk_size)));
        }
    }
    Ok(rows)
}

/// Superblocks, device slots, blob table and prefetch table.
fn write_tables(
    image: &mut [u8],
    spec: &BootstrapSpec<'_>,
    meta: &MetaArea,
    tables: &Tables,
    ext: &ExtSuperBlock,
    inodes: usize,
) {
    SuperBlock {
        root_nid: meta.nid(ROOT) as u16,
        inos: inodes as u64,
        blocks: spec.blobs.iter().map(BlobEntry::blocks).sum(),
        meta_blkaddr: (tables.meta_addr / BLOCK_SIZE) as u32,
        extra_devices: spec.blobs.len() as u16,
    }
    .encode(image);
    ext.encode(image);
    for (i, b) in spec.blobs.iter().enumerate() {
        encode_device_slot(image, i, &b.id, b.blocks());
        let off = (tables.blob_table_offset as usize) + i * BLOB_ENTRY_SIZE;
        b.encode(i as u32, &mut image[off..off + BLOB_ENTRY_SIZE]);
    }
    for (i, nid) in tables.prefetch_nids.iter().enumerate() {
        put_u32(image, tables.prefetch_offset as usize + 4 * i, *nid);
    }
}

/// Every placed inode, its xattrs and its data: chunk addresses of a file, entries of a
/// directory, the target of a symlink (inline tail and full blocks).
fn write_inodes(
    image: &mut [u8],
    spec: &BootstrapSpec<'_>,
    meta: &MetaArea,
    order: &[usize],
    meta_addr: u64,
) -> Result<()> {
    let tree = spec.tree;
    let mut nlink: HashMap<usize, u32> = HashMap::new();
    for &n in order {
        *nlink.entry(tree.nodes[n].inode).or_default() += 1;
    }
    for (ino_no, p) in meta.placed.iter().enumerate() {
        let n = p.node;
        let inode = tree.inode_of(n);
        let at = (meta_addr + p.offset) as usize;
        let isz = INODE_SIZE as usize + p.xattrs.len();
        let data_blk = ((meta_addr + p.data_offset) / BLOCK_SIZE) as u32;
        let (i_u, links) = if inode.is_dir() {
            let subdirs = tree.nodes[n]
                .children
                .values()
                .filter(|&&c| tree.is_dir(c))
                .count() as u32;
            (if p.blocks > 0 { data_blk } else { 0 }, 2 + subdirs)
        } else if inode.is_reg() {
            (chunk_format(spec.chunk_size), nlink[&tree.nodes[n].inode])
        } else if inode.is_symlink() {
            (
                if p.blocks > 0 { data_blk } else { 0 },
                nlink[&tree.nodes[n].inode],
            )
        } else {
            (inode.rdev, nlink[&tree.nodes[n].inode])
        };
        DiskInode {
            layout: p.layout,
            xattr_icount: xattr_icount(p.xattrs.len()),
            mode: inode.mode,
            size: p.size,
            i_u,
            ino: ino_no as u32 + 1,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
            nlink: links,
        }
        .encode(&mut image[at..]);
        image[at + INODE_SIZE as usize..at + isz].copy_from_slice(&p.xattrs);

        if inode.is_reg() {
            let mut a = at + round_up(isz as u64, 8) as usize;
            for &c in &inode.chunks {
                let info = tree.chunks[c as usize];
                let local = local_blob(spec, &info, tree, n)?;
                info.encode_addr(local, &mut image[a..a + CHUNK_ADDR_SIZE]);
                a += CHUNK_ADDR_SIZE;
            }
            continue;
        }
        let content: Vec<u8> = if inode.is_dir() {
            dir_content(tree, meta, n)
        } else if inode.is_symlink() {
            inode.target.clone()
        } else {
            Vec::new()
        };
        if !content.is_empty() {
            let full = (p.blocks * BLOCK_SIZE) as usize;
            let blk = (meta_addr + p.data_offset) as usize;
            if p.layout == LAYOUT_FLAT_INLINE {
                image[blk..blk + full].copy_from_slice(&content[..full]);
                image[at + isz..at + isz + content.len() - full].copy_from_slice(&content[full..]);
            } else {
                image[blk..blk + content.len()].copy_from_slice(&content);
            }
        }
    }
    Ok(())
}

/// The encoded directory entries of directory node `n`.
fn dir_content(tree: &Tree, meta: &MetaArea, n: usize) -> Vec<u8> {
    let own = meta.nid(n);
    let parent = meta.nid(tree.nodes[n].parent);
    let entries: Vec<(&[u8], u64, u8)> = meta.dir_names[&n]
        .iter()
        .map(|name| match name.as_slice() {
            b"." => (name.as_slice(), own, 2),
            b".." => (name.as_slice(), parent, 2),
            other => {
                let c = tree.nodes[n].children[other];
                (
                    name.as_slice(),
                    meta.nid(c),
                    file_type(tree.inode_of(c).mode),
                )
            }
        })
        .collect();
    dirent::encode(&entries)
}

fn local_blob(spec: &BootstrapSpec<'_>, info: &ChunkInfo, tree: &Tree, node: usize) -> Result<u32> {
    spec.blob_index.get(&info.blob).copied().ok_or_else(|| {
        Error::Corrupt(format!(
            "'{}' refers to blob {} which is not in the blob table",
            tree.path_of(node),
            info.blob
        ))
    })
}

/// ".", ".." and the children's names, sorted bytewise.
fn sorted_names(tree: &Tree, dir: usize) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = vec![b".".to_vec(), b"..".to_vec()];
    names.extend(tree.nodes[dir].children.keys().cloned());
    names.sort();
    names
}

/// Directory by directory: the directory, its non-directory children, then each
/// subdirectory the same way (depth first), siblings in name order.
fn placement_order(tree: &Tree) -> Vec<usize> {
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut stack = vec![ROOT];
    while let Some(d) = stack.pop() {
        order.push(d);
        let children: Vec<usize> = tree.nodes[d].children.values().copied().collect();
        order.extend(children.iter().copied().filter(|&c| !tree.is_dir(c)));
        for &c in children.iter().rev().filter(|&&c| tree.is_dir(c)) {
            stack.push(c);
        }
    }
    order
}
