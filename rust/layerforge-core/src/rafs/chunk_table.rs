//! Chunk records: the 80-byte rows of a bootstrap's chunk table, the 8-byte chunk addresses
//! in a file's inode, and the 16-byte (v1) chunk-info records of a blob's meta.

use super::{get_u32, get_u64, put_u16, put_u32, put_u64};

pub const CHUNK_ROW_SIZE: usize = 80;
pub const CHUNK_ADDR_SIZE: usize = 8;
const FLAG_COMPRESSED: u32 = 0x1;

/// Where one chunk lives: in which blob (an index chosen by the caller), at which offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkInfo {
    /// Digest of the uncompressed chunk data.
    pub digest: [u8; 32],
    /// Blob number; its meaning (global or local to a bootstrap) depends on the holder.
    pub blob: u32,
    /// Index of the chunk in its blob's chunk-info array.
    pub index: u32,
    pub compressed_offset: u64,
    pub compressed_size: u32,
    /// 4 KiB-aligned.
    pub uncompressed_offset: u64,
    pub uncompressed_size: u32,
    pub compressed: bool,
}

impl ChunkInfo {
    /// The 80-byte chunk-table row, with `blob_index` the entry in this bootstrap's blob table.
    pub fn encode_row(&self, blob_index: u32, file_offset: u64, out: &mut [u8]) {
        let b = &mut out[..CHUNK_ROW_SIZE];
        b.fill(0);
        b[..32].copy_from_slice(&self.digest);
        put_u32(b, 32, blob_index);
        put_u32(b, 36, if self.compressed { FLAG_COMPRESSED } else { 0 });
        put_u32(b, 40, self.compressed_size);
        put_u32(b, 44, self.uncompressed_size);
        put_u64(b, 48, self.compressed_offset);
        put_u64(b, 56, self.uncompressed_offset);
        put_u64(b, 64, file_offset);
        put_u32(b, 72, self.index);
    }

    /// Read a row back; `blob` is the row's blob-table index.
    pub fn decode_row(b: &[u8]) -> ChunkInfo {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&b[..32]);
        ChunkInfo {
            digest,
            blob: get_u32(b, 32),
            compressed: get_u32(b, 36) & FLAG_COMPRESSED != 0,
            compressed_size: get_u32(b, 40),
            uncompressed_size: get_u32(b, 44),
            compressed_offset: get_u64(b, 48),
            uncompressed_offset: get_u64(b, 56),
            index: get_u32(b, 72),
        }
    }

    /// The 8-byte address in an inode: device (blob index + 1) and ci index, block address.
    pub fn encode_addr(&self, blob_index: u32, out: &mut [u8]) {
        let lo = (self.index & 0xffff) as u16;
        let hi = ((blob_index + 1) & 0xff) as u16 | (((self.index >> 16) & 0xff) as u16) << 8;
        put_u16(out, 0, lo);
        put_u16(out, 2, hi);
        put_u32(
            out,
            4,
            (self.uncompressed_offset / super::BLOCK_SIZE) as u32,
        );
    }

    /// The 16-byte v1 chunk-info record of the blob meta (sizes stored minus one).
    pub fn encode_v1(&self, out: &mut [u8]) {
        let us = u64::from(self.uncompressed_size.max(1) - 1);
        let cs = u64::from(self.compressed_size.max(1) - 1);
        let uncomp = ((us & 0xf0_0000) >> 12)
            | (self.uncompressed_offset & 0xfff_ffff_f000)
            | ((us & 0x0f_ffff) << 44);
        let comp = (self.compressed_offset & 0xff_ffff_ffff)
            | ((cs & 0xf0_0000) << 20)
            | ((cs & 0x0f_ffff) << 44);
        put_u64(out, 0, uncomp);
        put_u64(out, 8, comp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChunkInfo {
        ChunkInfo {
            digest: [7; 32],
            blob: 0,
            index: 0x12_3456,
            compressed_offset: 0x12_3456_789a,
            compressed_size: 0x10_0000,
            uncompressed_offset: 0x5_0000_1000,
            uncompressed_size: 0xf_1234,
            compressed: true,
        }
    }

    #[test]
    fn row_round_trip() {
        let c = sample();
        let mut b = [0u8; 80];
        c.encode_row(0, 99, &mut b);
        assert_eq!(ChunkInfo::decode_row(&b), c);
        assert_eq!(get_u64(&b, 64), 99);
    }

    #[test]
    fn addr_and_v1_bits() {
        let c = sample();
        let mut a = [0u8; 8];
        c.encode_addr(2, &mut a);
        assert_eq!(u16::from_le_bytes([a[0], a[1]]), 0x3456);
        assert_eq!(u16::from_le_bytes([a[2], a[3]]), 0x1203);
        assert_eq!(get_u32(&a, 4), 0x50_0001);
        let mut v = [0u8; 16];
        c.encode_v1(&mut v);
        let (u, k) = (get_u64(&v, 0), get_u64(&v, 8));
        // Decode the way nydus does (storage/src/meta/chunk_info_v1.rs).
        let usize_ = ((u & 0xf00) << 12 | (u >> 44)) + 1;
        assert_eq!(usize_, 0xf_1234);
        assert_eq!(u & 0xfff_ffff_f000, 0x5_0000_1000);
        let csize = ((k & 0xf00_0000_0000) >> 20 | (k >> 44)) + 1;
        assert_eq!(csize, 0x10_0000);
        assert_eq!(k & 0xff_ffff_ffff, 0x12_3456_789a);
    }
}
