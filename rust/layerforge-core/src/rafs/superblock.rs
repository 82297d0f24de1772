//! The EROFS superblock (128 B at 1024) and the RAFS v6 extended superblock (256 B at 1152).

use super::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64};
use crate::error::{Error, Result};

pub const SUPER_OFFSET: usize = 1024;
pub const EXT_SUPER_OFFSET: usize = 1152;
/// Device slots start at 1408 = 11 x 128 (`s_devt_slotoff`).
pub const DEVICE_SLOT_OFFSET: usize = 1408;
pub const DEVICE_SLOT_SIZE: usize = 128;

pub const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
const FEATURE_COMPAT_RAFS_V6: u32 = 0x4000_0000;
const FEATURE_INCOMPAT_CHUNKED_FILE: u32 = 0x4;
const FEATURE_INCOMPAT_DEVICE_TABLE: u32 = 0x8;
const BLOCK_SIZE_BITS: u8 = 12;

/// RafsSuperFlags bits.
pub const FLAG_EXPLICIT_UID_GID: u64 = 0x10;
pub const FLAG_HAS_XATTR: u64 = 0x20;
pub const FLAG_INLINED_CHUNK_DIGEST: u64 = 0x100;
const FLAG_DIGESTS: u64 = 0x4 | 0x8;

/// The fields of the EROFS superblock that vary between images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuperBlock {
    pub root_nid: u16,
    pub inos: u64,
    pub blocks: u32,
    pub meta_blkaddr: u32,
    pub extra_devices: u16,
}

impl SuperBlock {
    pub fn encode(&self, image: &mut [u8]) {
        let b = &mut image[SUPER_OFFSET..SUPER_OFFSET + 128];
        b.fill(0);
        put_u32(b, 0, EROFS_MAGIC);
        put_u32(b, 8, FEATURE_COMPAT_RAFS_V6);
        b[12] = BLOCK_SIZE_BITS;
        put_u16(b, 14, self.root_nid);
        put_u64(b, 16, self.inos);
        put_u32(b, 36, self.blocks);
        put_u32(b, 40, self.meta_blkaddr);
        put_u32(
            b,
            80,
            FEATURE_INCOMPAT_CHUNKED_FILE | FEATURE_INCOMPAT_DEVICE_TABLE,
        );
        put_u16(b, 86, self.extra_devices);
        put_u16(b, 88, (DEVICE_SLOT_OFFSET / DEVICE_SLOT_SIZE) as u16);
    }

    pub fn decode(image: &[u8]) -> Result<Self> {
        if image.len() < 4096 {
            return Err(Error::Corrupt(format!(
                "not a RAFS v6 bootstrap: only {} bytes",
                image.len()
            )));
        }
        let b = &image[SUPER_OFFSET..SUPER_OFFSET + 128];
        if get_u32(b, 0) != EROFS_MAGIC {
            return Err(Error::Corrupt(
                "not a RAFS v6 bootstrap: no EROFS superblock magic at offset 1024".into(),
            ));
        }
        if get_u32(b, 8) & FEATURE_COMPAT_RAFS_V6 == 0 {
            return Err(Error::Corrupt(
                "an EROFS image, but not a RAFS v6 bootstrap (no RAFS_V6 compat feature)".into(),
            ));
        }
        Ok(SuperBlock {
            root_nid: get_u16(b, 14),
            inos: get_u64(b, 16),
            blocks: get_u32(b, 36),
            meta_blkaddr: get_u32(b, 40),
            extra_devices: get_u16(b, 86),
        })
    }
}

/// The RAFS v6 extended superblock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtSuperBlock {
    pub flags: u64,
    pub blob_table_offset: u64,
    pub blob_table_size: u32,
    pub chunk_size: u32,
    pub chunk_table_offset: u64,
    pub chunk_table_size: u64,
    pub prefetch_table_offset: u64,
    pub prefetch_table_size: u32,
}

impl ExtSuperBlock {
    pub fn encode(&self, image: &mut [u8]) {
        let b = &mut image[EXT_SUPER_OFFSET..EXT_SUPER_OFFSET + 256];
        b.fill(0);
        put_u64(b, 0, self.flags);
        put_u64(b, 8, self.blob_table_offset);
        put_u32(b, 16, self.blob_table_size);
        put_u32(b, 20, self.chunk_size);
        put_u64(b, 24, self.chunk_table_offset);
        put_u64(b, 32, self.chunk_table_size);
        put_u64(b, 40, self.prefetch_table_offset);
        put_u32(b, 48, self.prefetch_table_size);
    }

    pub fn decode(image: &[u8]) -> Self {
        let b = &image[EXT_SUPER_OFFSET..EXT_SUPER_OFFSET + 256];
        ExtSuperBlock {
            flags: get_u64(b, 0),
            blob_table_offset: get_u64(b, 8),
            blob_table_size: get_u32(b, 16),
            chunk_size: get_u32(b, 20),
            chunk_table_offset: get_u64(b, 24),
            chunk_table_size: get_u64(b, 32),
            prefetch_table_offset: get_u64(b, 40),
            prefetch_table_size: get_u32(b, 48),
        }
    }

    /// The digester flag bits (blake3 0x4, sha256 0x8).
    pub fn digest_flags(&self) -> u64 {
        self.flags & FLAG_DIGESTS
    }
}

/// One device slot: the blob id (NUL-padded to 64) and its size in blocks.
pub fn encode_device_slot(image: &mut [u8], index: usize, blob_id: &[u8; 64], blocks: u32) {
    let off = DEVICE_SLOT_OFFSET + index * DEVICE_SLOT_SIZE;
    let b = &mut image[off..off + DEVICE_SLOT_SIZE];
    b.fill(0);
    b[..64].copy_from_slice(blob_id);
    put_u32(b, 64, blocks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut img = vec![0u8; 4096];
        let sb = SuperBlock {
            root_nid: 128,
            inos: 7,
            blocks: 3,
            meta_blkaddr: 2,
            extra_devices: 1,
        };
        sb.encode(&mut img);
        assert_eq!(&img[1024..1028], &[0xe2, 0xe1, 0xf5, 0xe0]);
        assert_eq!(img[1104], 0x0c);
        assert_eq!(img[1112], 11);
        assert_eq!(SuperBlock::decode(&img).unwrap(), sb);
        let ext = ExtSuperBlock {
            flags: 0x194,
            blob_table_offset: 4096,
            blob_table_size: 256,
            chunk_size: 1 << 20,
            chunk_table_offset: 16384,
            chunk_table_size: 160,
            prefetch_table_offset: 4352,
            prefetch_table_size: 4,
        };
        ext.encode(&mut img);
        assert_eq!(ExtSuperBlock::decode(&img), ext);
        assert!(SuperBlock::decode(&[0u8; 4096]).is_err());
    }
}
