//! Reading a RAFS v6 bootstrap back: its superblocks, blob table and chunk table. This is
//! what a chunk dictionary needs (any bootstrap: ours or one `nydus-image` wrote).

use super::blob_table::{BlobEntry, BLOB_ENTRY_SIZE};
use super::chunk_table::{ChunkInfo, CHUNK_ROW_SIZE};
use super::superblock::{ExtSuperBlock, SuperBlock};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct BootstrapInfo {
    pub superblock: SuperBlock,
    pub ext: ExtSuperBlock,
    pub blobs: Vec<BlobEntry>,
    /// Chunk table rows; `blob` is the index in `blobs`.
    pub chunks: Vec<ChunkInfo>,
}

pub fn read_bootstrap(data: &[u8]) -> Result<BootstrapInfo> {
    let superblock = SuperBlock::decode(data)?;
    let ext = ExtSuperBlock::decode(data);
    let blobs: Vec<BlobEntry> = table(
        data,
        "blob table",
        ext.blob_table_offset,
        u64::from(ext.blob_table_size),
        BLOB_ENTRY_SIZE,
    )?
    .chunks(BLOB_ENTRY_SIZE)
    .map(BlobEntry::decode)
    .collect();
    let chunks: Vec<ChunkInfo> = table(
        data,
        "chunk table",
        ext.chunk_table_offset,
        ext.chunk_table_size,
        CHUNK_ROW_SIZE,
    )?
    .chunks(CHUNK_ROW_SIZE)
    .map(ChunkInfo::decode_row)
    .collect();
    if let Some(c) = chunks.iter().find(|c| c.blob as usize >= blobs.len()) {
        return Err(Error::Corrupt(format!(
            "bootstrap chunk table refers to blob {} of {}",
            c.blob,
            blobs.len()
        )));
    }
    Ok(BootstrapInfo {
        superblock,
        ext,
        blobs,
        chunks,
    })
}

/// The bytes of a table of `row`-byte rows that the superblock places at `off` (`size` bytes).
fn table<'a>(data: &'a [u8], what: &str, off: u64, size: u64, row: usize) -> Result<&'a [u8]> {
    let len = data.len() as u64;
    let end = match off.checked_add(size) {
        Some(end) if end <= len => end,
        _ => {
            return Err(Error::Corrupt(format!(
                "bootstrap {what} ({size} bytes at {off}) lies outside the file ({len} bytes)"
            )))
        }
    };
    if size % row as u64 != 0 {
        return Err(Error::Corrupt(format!(
            "bootstrap {what} size {size} is not a multiple of {row}"
        )));
    }
    Ok(&data[off as usize..end as usize])
}
