//! RAFS v6 inodes (always the 64-byte extended EROFS form, as nydus writes for tar input)
//! and their inline xattrs.

use super::{put_u16, put_u32, put_u64};
use crate::error::{Error, Result};

pub const INODE_SIZE: u64 = 64;

/// EROFS data layouts.
pub const LAYOUT_FLAT_PLAIN: u16 = 0;
pub const LAYOUT_FLAT_INLINE: u16 = 2;
pub const LAYOUT_CHUNK_BASED: u16 = 4;

/// Chunk format of a chunk-based inode: 8-byte indexes, chunk size as a power of two.
pub fn chunk_format(chunk_size: u32) -> u32 {
    0x20 | (chunk_size.trailing_zeros() - 12)
}

/// Linux "new" 32-bit device encoding.
pub fn encode_rdev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

#[derive(Debug, Clone, Default)]
pub struct DiskInode {
    pub layout: u16,
    pub xattr_icount: u16,
    pub mode: u32,
    pub size: u64,
    /// Block address, chunk format or rdev, depending on the type.
    pub i_u: u32,
    pub ino: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub nlink: u32,
}

impl DiskInode {
    pub fn encode(&self, out: &mut [u8]) {
        let b = &mut out[..INODE_SIZE as usize];
        b.fill(0);
        put_u16(b, 0, 1 | (self.layout << 1));
        put_u16(b, 2, self.xattr_icount);
        put_u16(b, 4, self.mode as u16);
        put_u64(b, 8, self.size);
        put_u32(b, 16, self.i_u);
        put_u32(b, 20, self.ino);
        put_u32(b, 24, self.uid);
        put_u32(b, 28, self.gid);
        put_u64(b, 32, self.mtime);
        put_u32(b, 44, self.nlink);
    }
}

/// Prefixes EROFS stores as a name index (longest first where one contains another).
const PREFIXES: [(&[u8], u8); 5] = [
    (b"system.posix_acl_access", 2),
    (b"system.posix_acl_default", 3),
    (b"user.", 1),
    (b"trusted.", 4),
    (b"security.", 6),
];

/// The inline xattr area (12-byte header + entries) for `xattrs`, empty when there are none.
/// Entries keep the given order (callers pass them sorted).
pub fn encode_xattrs(xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<u8>> {
    if xattrs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![0u8; 12];
    for (name, value) in xattrs {
        let (prefix, index) = PREFIXES
            .iter()
            .find(|(p, i)| {
                if *i == 2 || *i == 3 {
                    name.as_slice() == *p
                } else {
                    name.starts_with(p) && name.len() > p.len()
                }
            })
            .copied()
            .ok_or_else(|| {
                Error::input(format!(
                    "xattr '{}' has a namespace RAFS cannot store (user., trusted., security., system.posix_acl_*)",
                    String::from_utf8_lossy(name)
                ))
            })?;
        let suffix = &name[prefix.len()..];
        if suffix.len() > 255 || value.len() > 0xffff {
            return Err(Error::input(format!(
                "xattr '{}' is too large (name suffix {} bytes, value {} bytes)",
                String::from_utf8_lossy(name),
                suffix.len(),
                value.len()
            )));
        }
        out.push(suffix.len() as u8);
        out.push(index);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(suffix);
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    // `i_xattr_icount` is 16 bits: a larger area would be recorded short and misread.
    if out.len() > MAX_XATTR_AREA {
        return Err(Error::input(format!(
            "its xattrs take {} bytes, more than the {MAX_XATTR_AREA} an EROFS inode can hold",
            out.len()
        )));
    }
    Ok(out)
}

/// The largest xattr area `i_xattr_icount` can describe.
pub const MAX_XATTR_AREA: usize = 12 + (u16::MAX as usize - 1) * 4;

/// `i_xattr_icount` for an xattr area of `len` bytes.
pub fn xattr_icount(len: usize) -> u16 {
    if len == 0 {
        0
    } else {
        ((len - 12) / 4 + 1) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xattr_area_its_count_cannot_describe_is_refused() {
        let big = |n: u8| (format!("user.x{n}").into_bytes(), vec![n; 60_000]);
        let four: Vec<_> = (0..4).map(big).collect();
        let a = encode_xattrs(&four).unwrap();
        assert!(a.len() <= MAX_XATTR_AREA);
        assert_eq!(usize::from(xattr_icount(a.len())), (a.len() - 12) / 4 + 1);
        let five: Vec<_> = (0..5).map(big).collect();
        let e = encode_xattrs(&five).unwrap_err().to_string();
        assert!(e.contains("more than the 262148"), "{e}");
    }

    #[test]
    fn xattr_area() {
        let a = encode_xattrs(&[
            (b"user.k".to_vec(), b"v1".to_vec()),
            (b"system.posix_acl_access".to_vec(), vec![2, 0, 0, 0]),
        ])
        .unwrap();
        // header 12 + (4+1+2 -> 8) + (4+0+4 -> 8)
        assert_eq!(a.len(), 28);
        assert_eq!(&a[12..19], &[1, 1, 2, 0, b'k', b'v', b'1']);
        assert_eq!(&a[20..24], &[0, 2, 4, 0]);
        assert_eq!(xattr_icount(a.len()), 5);
        assert!(encode_xattrs(&[(b"other.x".to_vec(), vec![])]).is_err());
        assert!(encode_xattrs(&[]).unwrap().is_empty());
    }

    #[test]
    fn rdev_and_format() {
        assert_eq!(encode_rdev(1, 3), 0x103);
        assert_eq!(encode_rdev(8, 0x123), 0x10_0823);
        assert_eq!(chunk_format(1 << 20), 0x28);
        assert_eq!(chunk_format(4096), 0x20);
    }
}
