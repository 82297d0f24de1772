//! The EROFS superblock (128 B at 1024) and the RAFS v6 extended superblock (256 B at 1152).

use super::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64};
use crate::error::{Error, Result};

pub const SUPER_OFFSET: usize = 1024;
pub const EXT_SUPER_OFFSET: usize = 1152;
/// Device slots start at 1408 = 11 x 128 (`s_devt_slotoff`).
pub const DEVICE_SLOT_OFFSET: usize = 1408;
pub const DEVICE_SLOT_SIZE: usize = 128;

/// Size of the EROFS superblock and of the RAFS v6 extended superblock.
const SUPER_SIZE: usize = 128;
const EXT_SUPER_SIZE: usize = 256;

/// Byte offsets of the EROFS superblock's fields (`struct erofs_super_block` in the
/// kernel's `erofs_fs.h`, `RafsV6SuperBlock` in nydus' `rafs/src/metadata/layout/v6.rs`).
/// Fields not listed (checksum, build time, xattr block, uuid, volume name, ...) stay zero.
mod sb {
    /// `s_magic` (u32): [`super::EROFS_MAGIC`].
    pub const MAGIC: usize = 0;
    /// `s_feature_compat` (u32): RAFS v6 marks itself here.
    pub const FEATURE_COMPAT: usize = 8;
    /// `s_blkszbits` (u8): log2 of the block size.
    pub const BLKSZBITS: usize = 12;
    /// `s_root_nid` (u16): nid of the root directory.
    pub const ROOT_NID: usize = 14;
    /// `s_inos` (u64): number of inodes.
    pub const INOS: usize = 16;
    /// `s_blocks` (u32): blocks of the whole filesystem (the blobs' data blocks).
    pub const BLOCKS: usize = 36;
    /// `s_meta_blkaddr` (u32): block of the meta area (nid 0 lies at its start).
    pub const META_BLKADDR: usize = 40;
    /// `s_feature_incompat` (u32): chunked files, device table.
    pub const FEATURE_INCOMPAT: usize = 80;
    /// `s_extra_devices` (u16): number of device slots (one per blob).
    pub const EXTRA_DEVICES: usize = 86;
    /// `s_devt_slotoff` (u16): where the device slots start, in 128-byte units.
    pub const DEVT_SLOTOFF: usize = 88;
}

/// Byte offsets of the RAFS v6 extended superblock's fields (`RafsV6SuperBlockExt` in
/// nydus' `rafs/src/metadata/layout/v6.rs`); padding and the reserved tail stay zero.
mod ext {
    /// `s_flags` (u64): `RafsSuperFlags` (compressor, digester, explicit uid/gid, ...).
    pub const FLAGS: usize = 0;
    /// `s_blob_table_offset` (u64).
    pub const BLOB_TABLE_OFFSET: usize = 8;
    /// `s_blob_table_size` (u32): bytes.
    pub const BLOB_TABLE_SIZE: usize = 16;
    /// `s_chunk_size` (u32).
    pub const CHUNK_SIZE: usize = 20;
    /// `s_chunk_table_offset` (u64).
    pub const CHUNK_TABLE_OFFSET: usize = 24;
    /// `s_chunk_table_size` (u64): bytes.
    pub const CHUNK_TABLE_SIZE: usize = 32;
    /// `s_prefetch_table_offset` (u64): 0 without a prefetch table.
    pub const PREFETCH_TABLE_OFFSET: usize = 40;
    /// `s_prefetch_table_size` (u32): bytes (4 per nid).
    pub const PREFETCH_TABLE_SIZE: usize = 48;
}

/// Byte offsets in one 128-byte device slot (`struct erofs_deviceslot`).
mod slot {
    /// `tag` ([u8; 64]): the blob id, NUL-padded.
    pub const TAG: usize = 0;
    /// `blocks` (u32): the blob's size in blocks.
    pub const BLOCKS: usize = 64;
}

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
    /// `s_root_nid`: nid of the root directory.
    pub root_nid: u16,
    /// `s_inos`: number of inodes.
    pub inos: u64,
    /// `s_blocks`: data blocks of all blobs.
    pub blocks: u32,
    /// `s_meta_blkaddr`: block address of the meta area.
    pub meta_blkaddr: u32,
    /// `s_extra_devices`: device slots, one per blob.
    pub extra_devices: u16,
}

impl SuperBlock {
    pub fn encode(&self, image: &mut [u8]) {
        let b = &mut image[SUPER_OFFSET..SUPER_OFFSET + SUPER_SIZE];
        b.fill(0);
        put_u32(b, sb::MAGIC, EROFS_MAGIC);
        put_u32(b, sb::FEATURE_COMPAT, FEATURE_COMPAT_RAFS_V6);
        b[sb::BLKSZBITS] = BLOCK_SIZE_BITS;
        put_u16(b, sb::ROOT_NID, self.root_nid);
        put_u64(b, sb::INOS, self.inos);
        put_u32(b, sb::BLOCKS, self.blocks);
        put_u32(b, sb::META_BLKADDR, self.meta_blkaddr);
        put_u32(
            b,
            sb::FEATURE_INCOMPAT,
            FEATURE_INCOMPAT_CHUNKED_FILE | FEATURE_INCOMPAT_DEVICE_TABLE,
        );
        put_u16(b, sb::EXTRA_DEVICES, self.extra_devices);
        put_u16(
            b,
            sb::DEVT_SLOTOFF,
            (DEVICE_SLOT_OFFSET / DEVICE_SLOT_SIZE) as u16,
        );
    }

    pub fn decode(image: &[u8]) -> Result<Self> {
        if image.len() < 4096 {
            return Err(Error::Corrupt(format!(
                "not a RAFS v6 bootstrap: only {} bytes",
                image.len()
            )));
        }
        let b = &image[SUPER_OFFSET..SUPER_OFFSET + SUPER_SIZE];
        if get_u32(b, sb::MAGIC) != EROFS_MAGIC {
            return Err(Error::Corrupt(
                "not a RAFS v6 bootstrap: no EROFS superblock magic at offset 1024".into(),
            ));
        }
        if get_u32(b, sb::FEATURE_COMPAT) & FEATURE_COMPAT_RAFS_V6 == 0 {
            return Err(Error::Corrupt(
                "an EROFS image, but not a RAFS v6 bootstrap (no RAFS_V6 compat feature)".into(),
            ));
        }
        Ok(SuperBlock {
            root_nid: get_u16(b, sb::ROOT_NID),
            inos: get_u64(b, sb::INOS),
            blocks: get_u32(b, sb::BLOCKS),
            meta_blkaddr: get_u32(b, sb::META_BLKADDR),
            extra_devices: get_u16(b, sb::EXTRA_DEVICES),
        })
    }
}

/// The RAFS v6 extended superblock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtSuperBlock {
    /// `s_flags`: `RafsSuperFlags` bits.
    pub flags: u64,
    /// `s_blob_table_offset`: byte offset of the blob table.
    pub blob_table_offset: u64,
    /// `s_blob_table_size`: its size in bytes.
    pub blob_table_size: u32,
    /// `s_chunk_size`: the chunk size files are cut into.
    pub chunk_size: u32,
    /// `s_chunk_table_offset`: byte offset of the chunk table.
    pub chunk_table_offset: u64,
    /// `s_chunk_table_size`: its size in bytes.
    pub chunk_table_size: u64,
    /// `s_prefetch_table_offset`: byte offset of the prefetch table (0: none).
    pub prefetch_table_offset: u64,
    /// `s_prefetch_table_size`: its size in bytes.
    pub prefetch_table_size: u32,
}

impl ExtSuperBlock {
    pub fn encode(&self, image: &mut [u8]) {
        let b = &mut image[EXT_SUPER_OFFSET..EXT_SUPER_OFFSET + EXT_SUPER_SIZE];
        b.fill(0);
        put_u64(b, ext::FLAGS, self.flags);
        put_u64(b, ext::BLOB_TABLE_OFFSET, self.blob_table_offset);
        put_u32(b, ext::BLOB_TABLE_SIZE, self.blob_table_size);
        put_u32(b, ext::CHUNK_SIZE, self.chunk_size);
        put_u64(b, ext::CHUNK_TABLE_OFFSET, self.chunk_table_offset);
        put_u64(b, ext::CHUNK_TABLE_SIZE, self.chunk_table_size);
        put_u64(b, ext::PREFETCH_TABLE_OFFSET, self.prefetch_table_offset);
        put_u32(b, ext::PREFETCH_TABLE_SIZE, self.prefetch_table_size);
    }

    pub fn decode(image: &[u8]) -> Self {
        let b = &image[EXT_SUPER_OFFSET..EXT_SUPER_OFFSET + EXT_SUPER_SIZE];
        ExtSuperBlock {
            flags: get_u64(b, ext::FLAGS),
            blob_table_offset: get_u64(b, ext::BLOB_TABLE_OFFSET),
            blob_table_size: get_u32(b, ext::BLOB_TABLE_SIZE),
            chunk_size: get_u32(b, ext::CHUNK_SIZE),
            chunk_table_offset: get_u64(b, ext::CHUNK_TABLE_OFFSET),
            chunk_table_size: get_u64(b, ext::CHUNK_TABLE_SIZE),
            prefetch_table_offset: get_u64(b, ext::PREFETCH_TABLE_OFFSET),
            prefetch_table_size: get_u32(b, ext::PREFETCH_TABLE_SIZE),
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
    b[slot::TAG..slot::TAG + 64].copy_from_slice(blob_id);
    put_u32(b, slot::BLOCKS, blocks);
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
