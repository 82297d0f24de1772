//! Writing a layer's Nydus data blob after its chunk data: the `image.blob` header, the
//! blob meta (chunk-info array + 4 KiB header), the chunk digests, the inlined bootstrap and
//! the table of contents. Every byte also goes through the sha256 that names the blob.

use std::io::Write;

use super::algo::{Compressor, Digester};
use super::blob_table::{BlobEntry, CHUNK_INFO_V1_SIZE, LAYER_BLOB_FEATURES};
use super::chunk_table::ChunkInfo;
use super::toc::{
    tar_header, TocEntry, NAME_BLOB_DATA, NAME_BLOB_DIGEST, NAME_BLOB_META, NAME_BLOB_META_HEADER,
    NAME_BOOTSTRAP, NAME_TOC,
};
use super::{put_u32, put_u64, round_up, BLOCK_SIZE, INLINE_BLOB_ID};
use crate::digest::{Digest, Hasher};
use crate::error::{IoContext, Result};

const META_MAGIC: u32 = 0xB10B_B10B;
const META_HEADER_SIZE: usize = 4096;

/// A file being written, hashed and counted as it goes.
pub struct HashedWriter<W: Write> {
    out: W,
    hasher: Hasher,
    pos: u64,
    what: String,
}

impl<W: Write> HashedWriter<W> {
    pub fn new(out: W, what: impl Into<String>) -> Self {
        HashedWriter {
            out,
            hasher: Hasher::new(),
            pos: 0,
            what: what.into(),
        }
    }

    /// Continue a file whose first `pos` bytes were hashed into `hasher`.
    pub fn resume(out: W, hasher: Hasher, pos: u64, what: impl Into<String>) -> Self {
        HashedWriter {
            out,
            hasher,
            pos,
            what: what.into(),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.out
            .write_all(data)
            .ctx(|| format!("cannot write '{}'", self.what))?;
        self.hasher.update(data);
        self.pos += data.len() as u64;
        Ok(())
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Flush, and give back the output, the hash state and the byte count.
    pub fn into_parts(mut self) -> Result<(W, Hasher, u64)> {
        self.out
            .flush()
            .ctx(|| format!("cannot write '{}'", self.what))?;
        Ok((self.out, self.hasher, self.pos))
    }

    pub fn finish(self) -> Result<(W, Digest, u64)> {
        let (out, hasher, pos) = self.into_parts()?;
        Ok((out, hasher.finish(), pos))
    }
}

/// What follows the chunk data of a blob that has chunks: the blob's table entry (own id
/// still unknown) and the ToC entries so far.
pub struct MetaWritten {
    pub entry: BlobEntry,
    pub toc: Vec<TocEntry>,
}

/// Write `image.blob`'s header, the blob meta and the digests. `chunks` are the blob's own
/// chunks in ci-index order; the chunk data (`data_size` bytes) is already written.
pub fn write_meta<W: Write>(
    w: &mut HashedWriter<W>,
    chunks: &[ChunkInfo],
    data_size: u64,
    compressor: Compressor,
    digester: Digester,
    chunk_size: u32,
) -> Result<MetaWritten> {
    let uncompressed_size: u64 = chunks
        .iter()
        .map(|c| round_up(u64::from(c.uncompressed_size), BLOCK_SIZE))
        .sum();
    w.write(&tar_header(NAME_BLOB_DATA, data_size))?;
    let data_digest = w.hasher().clone().finish();
    let mut toc = vec![TocEntry {
        flags: Compressor::None.toc_flag(),
        name: NAME_BLOB_DATA.into(),
        digest: data_digest.0,
        compressed_offset: 0,
        compressed_size: data_size,
        uncompressed_size,
    }];

    let mut ci = vec![0u8; chunks.len() * CHUNK_INFO_V1_SIZE as usize];
    for (i, c) in chunks.iter().enumerate() {
        c.encode_v1(&mut ci[i * 16..i * 16 + 16]);
    }
    let (ci_stored, ci_compressor) = match Compressor::Zstd.compress(&ci)? {
        Some(z) => (z, Compressor::Zstd),
        None => (ci.clone(), Compressor::None),
    };
    let ci_offset = w.pos();
    let features = LAYER_BLOB_FEATURES;
    let mut header = vec![0u8; META_HEADER_SIZE];
    put_u32(&mut header, 0, META_MAGIC);
    put_u32(&mut header, 4, features);
    put_u32(&mut header, 8, ci_compressor.blob_code());
    put_u32(&mut header, 12, chunks.len() as u32);
    put_u64(&mut header, 16, ci_offset);
    put_u64(&mut header, 24, ci_stored.len() as u64);
    put_u64(&mut header, 32, ci.len() as u64);
    put_u32(&mut header, META_HEADER_SIZE - 4, META_MAGIC);
    w.write(&ci_stored)?;
    w.write(&header)?;
    w.write(&tar_header(
        NAME_BLOB_META,
        (ci_stored.len() + META_HEADER_SIZE) as u64,
    ))?;
    toc.push(TocEntry {
        flags: ci_compressor.toc_flag(),
        name: NAME_BLOB_META.into(),
        digest: Digest::of(&ci).0,
        compressed_offset: ci_offset,
        compressed_size: ci_stored.len() as u64,
        uncompressed_size: ci.len() as u64,
    });
    toc.push(TocEntry {
        flags: Compressor::None.toc_flag(),
        name: NAME_BLOB_META_HEADER.into(),
        digest: Digest::of(&header).0,
        compressed_offset: ci_offset + ci_stored.len() as u64,
        compressed_size: META_HEADER_SIZE as u64,
        uncompressed_size: META_HEADER_SIZE as u64,
    });

    let digests: Vec<u8> = chunks.iter().flat_map(|c| c.digest).collect();
    let digests_offset = w.pos();
    w.write(&digests)?;
    w.write(&tar_header(NAME_BLOB_DIGEST, digests.len() as u64))?;
    toc.push(TocEntry {
        flags: Compressor::None.toc_flag(),
        name: NAME_BLOB_DIGEST.into(),
        digest: Digest::of(&digests).0,
        compressed_offset: digests_offset,
        compressed_size: digests.len() as u64,
        uncompressed_size: digests.len() as u64,
    });

    let entry = BlobEntry {
        id: INLINE_BLOB_ID,
        chunk_size,
        chunk_count: chunks.len() as u32,
        compressor: compressor.blob_code(),
        digester: digester.blob_code(),
        features,
        compressed_size: w.pos(),
        uncompressed_size,
        ci_compressor: ci_compressor.blob_code(),
        ci_offset,
        ci_compressed_size: ci_stored.len() as u64,
        ci_uncompressed_size: ci.len() as u64,
    };
    Ok(MetaWritten { entry, toc })
}

/// Append the (zstd-compressed, unless that does not shrink it) bootstrap and the ToC.
pub fn write_bootstrap_and_toc<W: Write>(
    w: &mut HashedWriter<W>,
    bootstrap: &[u8],
    mut toc: Vec<TocEntry>,
) -> Result<()> {
    let (stored, c) = match Compressor::Zstd.compress(bootstrap)? {
        Some(z) => (z, Compressor::Zstd),
        None => (bootstrap.to_vec(), Compressor::None),
    };
    let offset = w.pos();
    w.write(&stored)?;
    w.write(&tar_header(NAME_BOOTSTRAP, stored.len() as u64))?;
    toc.push(TocEntry {
        flags: c.toc_flag(),
        name: NAME_BOOTSTRAP.into(),
        digest: Digest::of(bootstrap).0,
        compressed_offset: offset,
        compressed_size: stored.len() as u64,
        uncompressed_size: bootstrap.len() as u64,
    });
    let mut bytes = Vec::with_capacity(toc.len() * 128);
    for e in &toc {
        bytes.extend_from_slice(&e.encode());
    }
    w.write(&bytes)?;
    w.write(&tar_header(NAME_TOC, bytes.len() as u64))
}
