//! The RAFS v6 blob table: one 256-byte entry per data blob the bootstrap refers to.

use super::{get_u32, get_u64, put_u32, put_u64};
use crate::error::{Error, Result};

pub const BLOB_ENTRY_SIZE: usize = 256;

/// BlobFeatures bits.
pub const FEATURE_ALIGNED: u32 = 0x1;
pub const FEATURE_INLINED_FS_META: u32 = 0x2;
pub const FEATURE_INLINED_CHUNK_DIGEST: u32 = 0x20;
pub const FEATURE_HAS_TAR_HEADER: u32 = 0x1000_0000;
pub const FEATURE_HAS_TOC: u32 = 0x2000_0000;
pub const FEATURE_CAP_TAR_TOC: u32 = 0x4000_0000;

/// Features of a blob written with inline meta and a ToC (tar-rafs, blob-toc).
pub const LAYER_BLOB_FEATURES: u32 = FEATURE_CAP_TAR_TOC
    | FEATURE_HAS_TOC
    | FEATURE_HAS_TAR_HEADER
    | FEATURE_INLINED_CHUNK_DIGEST
    | FEATURE_INLINED_FS_META
    | FEATURE_ALIGNED;

/// Size of a v1 chunk-info record in the blob meta.
pub const CHUNK_INFO_V1_SIZE: u64 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// ASCII id, NUL-padded.
    pub id: [u8; 64],
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub compressor: u32,
    pub digester: u32,
    pub features: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub ci_compressor: u32,
    pub ci_offset: u64,
    pub ci_compressed_size: u64,
    pub ci_uncompressed_size: u64,
}

impl BlobEntry {
    /// The id as text (trailing NULs dropped).
    pub fn id_str(&self) -> String {
        let end = self.id.iter().position(|&b| b == 0).unwrap_or(64);
        String::from_utf8_lossy(&self.id[..end]).into_owned()
    }

    pub fn set_id(&mut self, id: &str) -> Result<()> {
        if id.len() > 64 {
            return Err(Error::input(format!(
                "blob id '{id}' is longer than 64 bytes"
            )));
        }
        self.id = [0u8; 64];
        self.id[..id.len()].copy_from_slice(id.as_bytes());
        Ok(())
    }

    /// Blocks of the blob's uncompressed (4 KiB-aligned) data.
    pub fn blocks(&self) -> u32 {
        (self.uncompressed_size / super::BLOCK_SIZE) as u32
    }

    pub fn encode(&self, index: u32, out: &mut [u8]) {
        let b = &mut out[..BLOB_ENTRY_SIZE];
        b.fill(0);
        b[..64].copy_from_slice(&self.id);
        put_u32(b, 64, index);
        put_u32(b, 68, self.chunk_size);
        put_u32(b, 72, self.chunk_count);
        put_u32(b, 76, self.compressor);
        put_u32(b, 80, self.digester);
        put_u32(b, 84, self.features);
        put_u64(b, 88, self.compressed_size);
        put_u64(b, 96, self.uncompressed_size);
        put_u32(b, 108, self.ci_compressor);
        put_u64(b, 112, self.ci_offset);
        put_u64(b, 120, self.ci_compressed_size);
        put_u64(b, 128, self.ci_uncompressed_size);
    }

    pub fn decode(b: &[u8]) -> Self {
        let mut id = [0u8; 64];
        id.copy_from_slice(&b[..64]);
        BlobEntry {
            id,
            chunk_size: get_u32(b, 68),
            chunk_count: get_u32(b, 72),
            compressor: get_u32(b, 76),
            digester: get_u32(b, 80),
            features: get_u32(b, 84),
            compressed_size: get_u64(b, 88),
            uncompressed_size: get_u64(b, 96),
            ci_compressor: get_u32(b, 108),
            ci_offset: get_u64(b, 112),
            ci_compressed_size: get_u64(b, 120),
            ci_uncompressed_size: get_u64(b, 128),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = BlobEntry {
            id: [0; 64],
            chunk_size: 1 << 20,
            chunk_count: 4,
            compressor: 3,
            digester: 0,
            features: LAYER_BLOB_FEATURES,
            compressed_size: 1234,
            uncompressed_size: 8192,
            ci_compressor: 3,
            ci_offset: 1000,
            ci_compressed_size: 40,
            ci_uncompressed_size: 64,
        };
        e.set_id(&"ab".repeat(32)).unwrap();
        let mut buf = [0u8; 256];
        e.encode(2, &mut buf);
        assert_eq!(get_u32(&buf, 64), 2);
        assert_eq!(get_u32(&buf, 84), 0x7000_0023);
        assert_eq!(BlobEntry::decode(&buf), e);
        assert_eq!(e.id_str(), "ab".repeat(32));
        assert_eq!(e.blocks(), 2);
    }
}
