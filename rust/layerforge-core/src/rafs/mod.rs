//! Nydus RAFS v6 images: OCI layer tars in, Nydus data blobs and (EROFS-compatible)
//! RAFS v6 bootstraps out, byte-compatible with what `nydus-image create --type tar-rafs
//! --fs-version 6 --blob-inline-meta --features blob-toc` and `nydus-image merge` write.
//!
//! * [`algo`]: chunk compressors and digesters.
//! * [`superblock`], [`inode`], [`dirent`], [`chunk_table`], [`blob_table`]: on-disk structures.
//! * [`tree`]: the in-memory filesystem a bootstrap describes; [`merge`] stacks layer trees,
//!   applying the [`whiteout`] rules.
//! * [`bootstrap`]: lays a tree out as a RAFS v6 bootstrap.
//! * [`toc`] and [`blob_writer`]: the data blob (chunk data, blob meta, digests, inlined
//!   bootstrap, table of contents).
//! * [`tar_input`]: reading a layer tar into a tree and a stream of chunks.
//! * [`reader`]: reading a bootstrap back (chunk dictionaries).
//! * [`convert`]: the whole image conversion, layers in parallel, deterministic output.

pub mod algo;
pub mod blob_table;
pub mod blob_writer;
pub mod bootstrap;
pub mod chunk_table;
pub mod convert;
pub mod dirent;
pub mod inode;
pub mod merge;
pub mod reader;
pub mod superblock;
pub mod tar_input;
pub mod toc;
pub mod tree;
pub mod whiteout;

/// EROFS / RAFS v6 block size; every table and data block is aligned to it.
pub const BLOCK_SIZE: u64 = 4096;

/// Blob id written for a layer's own blob inside its inlined bootstrap: the real id (the
/// sha256 of the blob file) is not known yet, and readers take it from the file name.
pub const INLINE_BLOB_ID: [u8; 64] = [b'x'; 64];

pub(crate) fn round_up(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

pub(crate) fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn get_u16(buf: &[u8], off: usize) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&buf[off..off + 2]);
    u16::from_le_bytes(b)
}

pub(crate) fn get_u32(buf: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn get_u64(buf: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(b)
}
