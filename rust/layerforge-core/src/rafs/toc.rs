//! The tar-like framing of a Nydus blob: every section is followed by a 512-byte GNU tar
//! header naming it, and the blob ends with a table of contents (128-byte entries) and the
//! `rafs.blob.toc` header, so readers find the sections by seeking back from the end.

use super::{get_u32, get_u64, put_u32, put_u64};
use crate::error::{Error, Result};

pub const TAR_HEADER_SIZE: usize = 512;
pub const TOC_ENTRY_SIZE: usize = 128;

pub const NAME_BLOB_DATA: &str = "image.blob";
pub const NAME_BLOB_META: &str = "blob.meta";
pub const NAME_BLOB_META_HEADER: &str = "blob.meta.header";
pub const NAME_BLOB_DIGEST: &str = "blob.digest";
pub const NAME_BOOTSTRAP: &str = "image.boot";
pub const NAME_TOC: &str = "rafs.blob.toc";

/// A GNU tar header for a regular member `name` of `size` bytes (mode, owner, time left
/// empty or zero, as nydus writes them).
pub fn tar_header(name: &str, size: u64) -> [u8; TAR_HEADER_SIZE] {
    let mut h = [0u8; TAR_HEADER_SIZE];
    h[..name.len()].copy_from_slice(name.as_bytes());
    if size < 0o777_7777_7777 {
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar ");
    h[263..265].copy_from_slice(b" \0");
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    h[148..155].copy_from_slice(format!("{sum:07o}").as_bytes());
    h
}

/// Name and size of a header written by [`tar_header`] (or any regular-file tar header).
pub fn parse_tar_header(h: &[u8]) -> Result<(String, u64)> {
    if h.len() < TAR_HEADER_SIZE {
        return Err(Error::Corrupt("truncated tar header".into()));
    }
    let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = String::from_utf8_lossy(&h[..end]).into_owned();
    let size = if h[124] & 0x80 != 0 {
        get_u64(&h[128..136], 0).swap_bytes()
    } else {
        let digits: String = h[124..136]
            .iter()
            .take_while(|&&b| b != 0 && b != b' ')
            .map(|&b| b as char)
            .collect();
        u64::from_str_radix(digits.trim(), 8)
            .map_err(|_| Error::Corrupt(format!("bad size in tar header of '{name}'")))?
    };
    Ok((name, size))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    pub flags: u32,
    pub name: String,
    /// sha256 of the uncompressed content.
    pub digest: [u8; 32],
    pub compressed_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

impl TocEntry {
    pub fn encode(&self) -> [u8; TOC_ENTRY_SIZE] {
        let mut b = [0u8; TOC_ENTRY_SIZE];
        put_u32(&mut b, 0, self.flags);
        b[8..8 + self.name.len().min(16)]
            .copy_from_slice(&self.name.as_bytes()[..self.name.len().min(16)]);
        b[24..56].copy_from_slice(&self.digest);
        put_u64(&mut b, 56, self.compressed_offset);
        put_u64(&mut b, 64, self.compressed_size);
        put_u64(&mut b, 72, self.uncompressed_size);
        b
    }

    pub fn decode(b: &[u8]) -> Self {
        let end = b[8..24].iter().position(|&c| c == 0).unwrap_or(16);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&b[24..56]);
        TocEntry {
            flags: get_u32(b, 0),
            name: String::from_utf8_lossy(&b[8..8 + end]).into_owned(),
            digest,
            compressed_offset: get_u64(b, 56),
            compressed_size: get_u64(b, 64),
            uncompressed_size: get_u64(b, 72),
        }
    }
}

/// The ToC entries of a whole blob (its last bytes).
pub fn read_toc(blob: &[u8]) -> Result<Vec<TocEntry>> {
    if blob.len() < TAR_HEADER_SIZE {
        return Err(Error::Corrupt("blob too small for a ToC".into()));
    }
    let (name, size) = parse_tar_header(&blob[blob.len() - TAR_HEADER_SIZE..])?;
    if name != NAME_TOC
        || size as usize % TOC_ENTRY_SIZE != 0
        || size as usize > blob.len() - TAR_HEADER_SIZE
    {
        return Err(Error::Corrupt(format!(
            "the blob does not end with a '{NAME_TOC}' table of contents"
        )));
    }
    let start = blob.len() - TAR_HEADER_SIZE - size as usize;
    Ok(blob[start..blob.len() - TAR_HEADER_SIZE]
        .chunks(TOC_ENTRY_SIZE)
        .map(TocEntry::decode)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_checksum() {
        let h = tar_header("image.boot", 0o1234);
        assert_eq!(&h[124..136], b"00000001234\0");
        assert_eq!(&h[257..265], b"ustar  \0");
        assert_eq!(h[155], 0);
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..155]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(
            parse_tar_header(&h).unwrap(),
            ("image.boot".to_string(), 0o1234)
        );
        let big = tar_header("image.blob", 9 << 30);
        assert_eq!(parse_tar_header(&big).unwrap().1, 9 << 30);
    }

    #[test]
    fn toc_round_trip() {
        let e = TocEntry {
            flags: 2,
            name: NAME_BOOTSTRAP.into(),
            digest: [3; 32],
            compressed_offset: 10,
            compressed_size: 20,
            uncompressed_size: 30,
        };
        let mut blob = vec![9u8; 7];
        blob.extend_from_slice(&e.encode());
        blob.extend_from_slice(&tar_header(NAME_TOC, 128));
        assert_eq!(read_toc(&blob).unwrap(), vec![e]);
    }
}
