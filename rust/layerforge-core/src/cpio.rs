//! Deterministic `newc` (SVR4, `070701`) cpio streams: the initramfs format Linux and
//! Unikraft unpack.
//!
//! Reproducible by construction: entries arrive sorted and normalised from [`crate::entry`];
//! inode numbers are assigned in that order starting at 1 (hard links share their target's),
//! device fields are 0, directory link counts are `2 + subdirectories`. Hard-linked files
//! follow GNU cpio: every member of the group carries the shared inode and link count, and
//! only the last one carries the data (readers create the earlier names empty and link them).
//! The archive ends with `TRAILER!!!` and is zero-padded to a 512-byte multiple.

use std::collections::HashMap;

use crate::chunk::{ChunkSink, ChunkWriter};
use crate::content::write_content;
use crate::entry::{Entry, Kind};
use crate::error::{Error, Result};
use crate::file_mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::progress::Progress;

const MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";
/// GNU cpio's default I/O block: archives are padded to a multiple of it.
const ARCHIVE_BLOCK: u64 = 512;
/// The kernel's PATH_MAX, NUL included.
const MAX_NAME: usize = 4096;

/// The header fields of one member, before hex encoding.
#[derive(Debug, Default, Clone, Copy)]
struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

fn encode(h: &Header, name: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    out.extend_from_slice(MAGIC);
    let namesize = name.len() as u32 + 1;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    for v in [
        h.ino,
        h.mode,
        h.uid,
        h.gid,
        h.nlink,
        h.mtime,
        h.filesize,
        0,
        0,
        h.rdev_major,
        h.rdev_minor,
        namesize,
        0,
    ] {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{v:08X}");
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len() + pad4(HEADER_LEN + name.len() + 1), 0);
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn fits_u32(value: u64, what: &str, path: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::input(format!(
            "{what} of '/{path}' ({value}) does not fit a cpio newc header (max 4 GiB - 1)"
        ))
    })
}

/// Per-entry numbering: inode, link count, and for hard-linked files which member carries data.
struct Numbering {
    ino: Vec<u32>,
    nlink: Vec<u32>,
    /// Index of the entry whose content a hard-link group writes, keyed by the group's file.
    data_at: HashMap<usize, usize>,
    /// For each hard link, the index of the entry it links to.
    link_target: HashMap<usize, usize>,
}

fn number(entries: &[Entry]) -> Result<Numbering> {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    let mut ino = vec![0u32; entries.len()];
    let mut nlink = vec![1u32; entries.len()];
    let mut data_at = HashMap::new();
    let mut link_target = HashMap::new();
    let mut next = 1u32;
    for (i, e) in entries.iter().enumerate() {
        match &e.kind {
            Kind::Hardlink { target } => {
                let t = *index.get(target.as_str()).ok_or_else(|| {
                    Error::input(format!(
                        "hard link '/{}' points at '/{target}', which is not in the archive",
                        e.path
                    ))
                })?;
                link_target.insert(i, t);
                if matches!(entries[t].kind, Kind::File { .. }) {
                    ino[i] = ino[t];
                    data_at.insert(t, i); // the last link in order wins
                } else {
                    ino[i] = next;
                    next += 1;
                }
            }
            _ => {
                ino[i] = next;
                next += 1;
            }
        }
        if e.kind.is_dir() {
            nlink[i] = 2;
        }
    }
    // Group sizes, and each directory's subdirectories.
    for (&link, &t) in &link_target {
        if ino[link] == ino[t] {
            nlink[t] += 1;
        }
    }
    for (&link, &t) in &link_target {
        if ino[link] == ino[t] {
            nlink[link] = nlink[t];
        }
    }
    for e in entries.iter().filter(|e| e.kind.is_dir()) {
        if let Some((parent, _)) = e.path.rsplit_once('/') {
            if let Some(&p) = index.get(parent) {
                nlink[p] += 1;
            }
        }
    }
    Ok(Numbering {
        ino,
        nlink,
        data_at,
        link_target,
    })
}

/// Write `entries` (sorted, normalised) as a newc archive; `progress` advances by content bytes.
pub fn write_cpio<S: ChunkSink>(
    entries: &[Entry],
    out: &mut ChunkWriter<S>,
    progress: &Progress,
) -> Result<()> {
    let n = number(entries)?;
    let mut hdr = Vec::with_capacity(HEADER_LEN + 256);
    for (i, e) in entries.iter().enumerate() {
        progress.check()?;
        if e.path.len() + 1 > MAX_NAME {
            return Err(Error::input(format!(
                "path '/{}' is longer than the {MAX_NAME} bytes an initramfs allows",
                e.path
            )));
        }
        // A hard link to a file is written as that file; to anything else, as a copy of it.
        let owner = n.link_target.get(&i).copied().unwrap_or(i);
        let (kind, mode) = (&entries[owner].kind, entries[owner].mode);
        let mut h = Header {
            ino: n.ino[i],
            uid: e.uid,
            gid: e.gid,
            nlink: n.nlink[i],
            mtime: fits_u32(e.mtime, "modification time", &e.path)?,
            ..Header::default()
        };
        let mut body: Option<&[u8]> = None;
        let mut file: Option<(&crate::entry::Content, u64)> = None;
        h.mode = mode
            | match kind {
                Kind::Dir => S_IFDIR,
                Kind::Fifo => S_IFIFO,
                Kind::CharDevice { major, minor } => {
                    (h.rdev_major, h.rdev_minor) = (*major, *minor);
                    S_IFCHR
                }
                Kind::BlockDevice { major, minor } => {
                    (h.rdev_major, h.rdev_minor) = (*major, *minor);
                    S_IFBLK
                }
                Kind::Symlink { target } => {
                    h.filesize = fits_u32(target.len() as u64, "symlink target", &e.path)?;
                    body = Some(target.as_bytes());
                    S_IFLNK
                }
                Kind::File { content, size } => {
                    let carries = n.data_at.get(&owner).copied().unwrap_or(owner) == i;
                    if carries {
                        h.filesize = fits_u32(*size, "size", &e.path)?;
                        file = Some((content, *size));
                    }
                    S_IFREG
                }
                Kind::Hardlink { .. } => {
                    return Err(Error::input(format!(
                        "hard link '/{}' points at another hard link",
                        e.path
                    )))
                }
            };
        hdr.clear();
        encode(&h, &e.path, &mut hdr);
        out.write(&hdr)?;
        if let Some(b) = body {
            out.write(b)?;
            out.zeros(pad4(b.len()))?;
        }
        if let Some((content, size)) = file {
            write_content(content, size, out, progress, None)?;
            out.zeros(pad4((size % 4) as usize))?;
        }
    }
    hdr.clear();
    encode(
        &Header {
            nlink: 1,
            ..Header::default()
        },
        TRAILER,
        &mut hdr,
    );
    out.write(&hdr)?;
    let rem = out.written() % ARCHIVE_BLOCK;
    if rem != 0 {
        out.zeros((ARCHIVE_BLOCK - rem) as usize)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryOptions, LayerSpec};

    fn archive(spec: &LayerSpec) -> Vec<u8> {
        let entries = spec.collect().unwrap();
        let mut w = ChunkWriter::new(Vec::<Vec<u8>>::new(), 4096);
        write_cpio(&entries, &mut w, &Progress::new()).unwrap();
        w.finish().unwrap().0.concat()
    }

    /// (name, ino, mode, nlink, filesize, data) of each member, parsed independently.
    fn parse(mut b: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            assert_eq!(&b[..6], MAGIC);
            let f = |k: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * k..14 + 8 * k]).unwrap(), 16)
                    .unwrap()
            };
            let (ino, mode, nlink, size, namesize) = (f(0), f(1), f(4), f(6), f(11) as usize);
            let name =
                String::from_utf8(b[HEADER_LEN..HEADER_LEN + namesize - 1].to_vec()).unwrap();
            let data_at = HEADER_LEN + namesize + pad4(HEADER_LEN + namesize);
            let data = b[data_at..data_at + size as usize].to_vec();
            b = &b[data_at + size as usize + pad4(size as usize)..];
            if name == TRAILER {
                assert!(b.iter().all(|&z| z == 0));
                return out;
            }
            out.push((name, ino, mode, nlink, data));
        }
    }

    #[test]
    fn members_are_sorted_numbered_and_padded() {
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_file("/bin/init", b"#!/bin/sh\n".to_vec(), 0o755);
        spec.add_symlink("/bin/sh", "busybox");
        spec.add_dir("/etc", 0o755);
        let b = archive(&spec);
        assert_eq!(b.len() % 512, 0);
        let m = parse(&b);
        let names: Vec<_> = m.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/init", "bin/sh", "etc"]);
        assert_eq!(m[0].1, 1);
        assert_eq!(m[0].2, S_IFDIR | 0o755);
        assert_eq!(m[0].3, 2);
        assert_eq!(m[1].2, S_IFREG | 0o755);
        assert_eq!(m[1].4, b"#!/bin/sh\n");
        assert_eq!(m[2].2, S_IFLNK | 0o777);
        assert_eq!(m[2].4, b"busybox");
        assert_eq!(archive(&spec), b, "same input, same bytes");
    }

    #[test]
    fn hard_links_share_an_inode_and_the_last_carries_data() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a"), b"shared").unwrap();
        std::fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        std::fs::hard_link(t.path().join("a"), t.path().join("c")).unwrap();
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(t.path(), "/");
        let m = parse(&archive(&spec));
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|x| x.1 == m[0].1 && x.3 == 3), "{m:?}");
        assert_eq!(m[0].4, b"");
        assert_eq!(m[1].4, b"");
        assert_eq!(m[2].4, b"shared");
    }

    #[test]
    fn oversized_values_are_refused_with_the_path() {
        let mut spec = LayerSpec::new(EntryOptions {
            mtime: 1 << 33,
            ..EntryOptions::default()
        });
        spec.add_file("/x", b"1".to_vec(), 0o644);
        let entries = spec.collect().unwrap();
        let mut w = ChunkWriter::new(Vec::<Vec<u8>>::new(), 4096);
        let err = write_cpio(&entries, &mut w, &Progress::new()).unwrap_err();
        assert!(err.to_string().contains("'/x'"), "{err}");
    }
}
