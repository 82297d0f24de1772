//! EROFS directory blocks: 12-byte dirents then the names, packed into 4 KiB blocks.

use super::{put_u16, put_u64, BLOCK_SIZE};
use crate::file_mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};

pub const DIRENT_SIZE: usize = 12;

/// File types of dirents.
pub fn file_type(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFREG => 1,
        S_IFDIR => 2,
        S_IFCHR => 3,
        S_IFBLK => 4,
        S_IFIFO => 5,
        S_IFSOCK => 6,
        S_IFLNK => 7,
        _ => 0,
    }
}

/// How names (sorted bytewise, "." and ".." included) fall into blocks: the entry count of
/// each block. Greedy: a block takes entries while dirents + names fit in 4 KiB.
pub fn pack(names: &[&[u8]]) -> Vec<usize> {
    let mut blocks = Vec::new();
    let (mut used, mut count) = (0usize, 0usize);
    for n in names {
        let need = DIRENT_SIZE + n.len();
        if count > 0 && used + need > BLOCK_SIZE as usize {
            blocks.push(count);
            used = 0;
            count = 0;
        }
        used += need;
        count += 1;
    }
    if count > 0 {
        blocks.push(count);
    }
    blocks
}

/// Directory size: full blocks plus the bytes used in the last one.
pub fn dir_size(names: &[&[u8]]) -> u64 {
    let blocks = pack(names);
    let mut start = 0;
    let mut size = 0;
    for (i, &n) in blocks.iter().enumerate() {
        let used: usize = names[start..start + n]
            .iter()
            .map(|x| DIRENT_SIZE + x.len())
            .sum();
        size += if i + 1 == blocks.len() {
            used as u64
        } else {
            BLOCK_SIZE
        };
        start += n;
    }
    size
}

/// Serialise the directory data (`entries` sorted by name); the result has `dir_size` bytes.
pub fn encode(entries: &[(&[u8], u64, u8)]) -> Vec<u8> {
    let names: Vec<&[u8]> = entries.iter().map(|e| e.0).collect();
    let blocks = pack(&names);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &n) in blocks.iter().enumerate() {
        let base = out.len();
        let group = &entries[start..start + n];
        let mut name_off = DIRENT_SIZE * n;
        out.resize(base + DIRENT_SIZE * n, 0);
        for (k, (name, nid, ft)) in group.iter().enumerate() {
            let d = &mut out[base + k * DIRENT_SIZE..base + (k + 1) * DIRENT_SIZE];
            put_u64(d, 0, *nid);
            put_u16(d, 8, name_off as u16);
            d[10] = *ft;
            name_off += name.len();
        }
        for (name, _, _) in group {
            out.extend_from_slice(name);
        }
        if i + 1 < blocks.len() {
            out.resize(base + BLOCK_SIZE as usize, 0);
        }
        start += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_directory() {
        let e: Vec<(&[u8], u64, u8)> = vec![(b".", 128, 2), (b"..", 128, 2), (b"a", 130, 1)];
        let d = encode(&e);
        assert_eq!(d.len() as u64, dir_size(&[b".", b"..", b"a"]));
        assert_eq!(d.len(), 36 + 4);
        assert_eq!(u16::from_le_bytes([d[8], d[9]]), 36);
        assert_eq!(u16::from_le_bytes([d[20], d[21]]), 37);
        assert_eq!(&d[36..], b"...a");
    }

    #[test]
    fn spills_into_blocks() {
        let names: Vec<Vec<u8>> = (0..400)
            .map(|i| format!("file-{i:05}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
        let blocks = pack(&refs);
        // 22 bytes per entry -> 186 per block
        assert_eq!(blocks, vec![186, 186, 28]);
        let e: Vec<(&[u8], u64, u8)> = refs.iter().map(|n| (*n, 1, 1)).collect();
        let d = encode(&e);
        assert_eq!(d.len() as u64, 2 * 4096 + 28 * 22);
        assert_eq!(d.len() as u64, dir_size(&refs));
    }
}
