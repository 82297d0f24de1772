//! Chunk compressors and digesters, with the codes RAFS stores for them.

use std::cell::RefCell;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::rules::{RuleError, Setting};

/// Smallest and largest chunk sizes RAFS accepts (both powers of two).
pub const MIN_CHUNK_SIZE: u64 = 0x1000;
pub const MAX_CHUNK_SIZE: u64 = 0x100_0000;

/// zstd level of `nydus-image` (the library default).
const ZSTD_LEVEL: i32 = 3;
/// Match-finder tables sized for chunks of at most 1 MiB. Level 3 sizes them for inputs of
/// any length (2^17 hash and 2^16 chain entries); 2^15 entries each keep both tables in L2
/// cache. On the 712 MB /usr/lib image of `benchmarks/side_by_side_nydus.py`: 2^16 was ~15%
/// faster than level 3's tables for +0.25% of blob bytes, 2^15 another ~5% for +0.3% (blobs
/// then +0.3% against nydus-image's own, inside the 2% the issue allows). zstd still shrinks
/// the tables for smaller chunks (capped by the input size).
const ZSTD_HASH_LOG: u32 = 15;
const ZSTD_CHAIN_LOG: u32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    None,
    Lz4Block,
    Zstd,
}

impl Compressor {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "none" => Ok(Compressor::None),
            "lz4_block" => Ok(Compressor::Lz4Block),
            "zstd" => Ok(Compressor::Zstd),
            other => Err(Error::Rule(RuleError::text(
                Setting::Compressor,
                other,
                "is not one of zstd, lz4_block, none",
            ))),
        }
    }

    /// Code in the blob table and blob meta header.
    pub fn blob_code(self) -> u32 {
        match self {
            Compressor::None => 0,
            Compressor::Lz4Block => 1,
            Compressor::Zstd => 3,
        }
    }

    /// Flag in the RAFS extended superblock.
    pub fn super_flag(self) -> u64 {
        match self {
            Compressor::None => 0x1,
            Compressor::Lz4Block => 0x2,
            Compressor::Zstd => 0x80,
        }
    }

    /// Flag of a ToC entry.
    pub fn toc_flag(self) -> u32 {
        match self {
            Compressor::None => 0x1,
            Compressor::Zstd => 0x2,
            Compressor::Lz4Block => 0x4,
        }
    }

    /// Compress `data`; `None` when the result would not be strictly smaller (the chunk is
    /// then stored as is, as nydus does).
    pub fn compress(self, data: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        Ok(self.compress_into(data, &mut out)?.then_some(out))
    }

    /// [`Compressor::compress`] into `out` (a buffer that is reused from chunk to chunk);
    /// true when `out` holds a strictly smaller encoding of `data`.
    pub fn compress_into(self, data: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if data.is_empty() {
            return Ok(false);
        }
        match self {
            Compressor::None => return Ok(false),
            Compressor::Lz4Block => *out = lz4_flex::block::compress(data),
            Compressor::Zstd => zstd_compress_into(data, out)?,
        }
        Ok(out.len() < data.len())
    }

    #[cfg(test)]
    pub fn decompress(self, data: &[u8], size: usize) -> Result<Vec<u8>> {
        match self {
            Compressor::None => Ok(data.to_vec()),
            Compressor::Lz4Block => lz4_flex::block::decompress(data, size)
                .map_err(|e| Error::Corrupt(format!("lz4 block: {e}"))),
            Compressor::Zstd => {
                zstd::bulk::decompress(data, size).map_err(|e| Error::Corrupt(format!("zstd: {e}")))
            }
        }
    }
}

thread_local! {
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// One zstd frame with the content size recorded (`zstd::bulk`), reusing a per-thread context.
fn zstd_compress_into(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut c =
                zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::io("zstd", e))?;
            for p in [
                zstd::zstd_safe::CParameter::HashLog(ZSTD_HASH_LOG),
                zstd::zstd_safe::CParameter::ChainLog(ZSTD_CHAIN_LOG),
            ] {
                c.set_parameter(p)
                    .map_err(|e| Error::io("zstd parameters", e))?;
            }
            *slot = Some(c);
        }
        let Some(c) = slot.as_mut() else {
            return Err(Error::Corrupt("zstd context missing".into()));
        };
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        c.compress_to_buffer(data, out)
            .map(|_| ())
            .map_err(|e| Error::io("zstd", e))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digester {
    Blake3,
    Sha256,
}

impl Digester {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "blake3" => Ok(Digester::Blake3),
            "sha256" => Ok(Digester::Sha256),
            other => Err(Error::Rule(RuleError::text(
                Setting::Digester,
                other,
                "is not one of blake3, sha256",
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Digester::Blake3 => "blake3",
            Digester::Sha256 => "sha256",
        }
    }

    pub fn blob_code(self) -> u32 {
        match self {
            Digester::Blake3 => 0,
            Digester::Sha256 => 1,
        }
    }

    pub fn super_flag(self) -> u64 {
        match self {
            Digester::Blake3 => 0x4,
            Digester::Sha256 => 0x8,
        }
    }

    pub fn digest(self, data: &[u8]) -> [u8; 32] {
        match self {
            Digester::Blake3 => *blake3::hash(data).as_bytes(),
            Digester::Sha256 => Sha256::digest(data).into(),
        }
    }
}

/// Check a chunk size: a power of two from 4 KiB to 16 MiB.
pub fn validate_chunk_size(size: u64) -> Result<u32> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) || !size.is_power_of_two() {
        return Err(Error::Rule(RuleError::number(
            Setting::ChunkSize,
            size,
            "is not a power of two from 4096 (4 KiB) to 16777216 (16 MiB)",
        )));
    }
    Ok(size as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(validate_chunk_size(0x100000).unwrap(), 0x100000);
        assert!(validate_chunk_size(4096).is_ok());
        assert!(validate_chunk_size(16 << 20).is_ok());
        for bad in [0, 2048, 3 << 20, 32 << 20, 5000] {
            let e = validate_chunk_size(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{bad} is not a power of two")),
                "{e}"
            );
        }
    }

    #[test]
    fn compressors_round_trip_and_refuse_growth() {
        let text = b"nydus chunk ".repeat(1000);
        for c in [Compressor::Zstd, Compressor::Lz4Block] {
            let z = c.compress(&text).unwrap().unwrap();
            assert!(z.len() < text.len());
            assert_eq!(c.decompress(&z, text.len()).unwrap(), text);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(Compressor::Zstd.compress(&noise).unwrap().is_none());
        assert!(Compressor::None.compress(&text).unwrap().is_none());
    }

    #[test]
    fn digests() {
        assert_eq!(
            crate::digest::Digest(Digester::Sha256.digest(b"abc")).hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            crate::digest::Digest(Digester::Blake3.digest(b"")).hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
