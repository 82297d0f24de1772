//! newc cpio writing (the initrds of unikernel images) from arbitrary layer specs: the
//! spec is refused with an error, or the archive reads back (with an independent newc
//! reader) as exactly the collected entries, every name relative and free of `..`, the
//! archive padded to 512 bytes and ended by `TRAILER!!!`; never a panic.
#![no_main]

use arbitrary::Arbitrary;
use layerforge_core::chunk::ChunkWriter;
use layerforge_core::cpio::write_cpio;
use layerforge_core::entry::{EntryOptions, Kind, LayerSpec};
use layerforge_core::progress::Progress;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Item {
    File(String, Vec<u8>, u16),
    Dir(String, u16),
    Symlink(String, String),
    Fifo(String),
    Char(String, u16, u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    mtime: u32,
    uid: u16,
    items: Vec<Item>,
}

/// (name, mode, nlink, data) of a member.
type NewcMember = (String, u32, u32, Vec<u8>);

/// Each member up to the trailer, or what is wrong.
fn read_newc(mut b: &[u8]) -> Result<Vec<NewcMember>, String> {
    let total = b.len();
    let mut out = Vec::new();
    let hex = |f: &[u8]| -> Result<usize, String> {
        let s = std::str::from_utf8(f).map_err(|_| "header field not text".to_string())?;
        usize::from_str_radix(s, 16).map_err(|_| format!("header field {s:?} not hex"))
    };
    let pad4 = |n: usize| (4 - n % 4) % 4;
    loop {
        if b.len() < 110 || &b[..6] != b"070701" {
            return Err(format!("no newc header at {}", total - b.len()));
        }
        let field = |k: usize| hex(&b[6 + 8 * k..14 + 8 * k]);
        let (mode, nlink, size, namesize) = (field(1)?, field(4)?, field(6)?, field(11)?);
        if namesize == 0 || 110 + namesize > b.len() {
            return Err("bad name size".into());
        }
        let name = String::from_utf8(b[110..110 + namesize - 1].to_vec())
            .map_err(|_| "name not UTF-8".to_string())?;
        if b[110 + namesize - 1] != 0 {
            return Err("name not NUL-terminated".into());
        }
        let at = 110 + namesize + pad4(110 + namesize);
        if at + size > b.len() {
            return Err("data past the end".into());
        }
        let data = b[at..at + size].to_vec();
        b = &b[(at + size + pad4(size)).min(b.len())..];
        if name == "TRAILER!!!" {
            if !b.iter().all(|&z| z == 0) {
                return Err("bytes after the trailer".into());
            }
            if !total.is_multiple_of(512) {
                return Err("not padded to 512 bytes".into());
            }
            return Ok(out);
        }
        out.push((name, mode as u32, nlink as u32, data));
    }
}

fuzz_target!(|input: Input| {
    let mut spec = LayerSpec::new(EntryOptions {
        mtime: u64::from(input.mtime),
        uid: u32::from(input.uid),
        gid: 0,
        keep_setuid: false,
    });
    for item in input.items.iter().take(64) {
        match item {
            Item::File(dest, data, mode) => {
                spec.add_file(dest.clone(), data.clone(), u32::from(*mode));
            }
            Item::Dir(dest, mode) => {
                spec.add_dir(dest.clone(), u32::from(*mode));
            }
            Item::Symlink(dest, target) => {
                spec.add_symlink(dest.clone(), target.clone());
            }
            Item::Fifo(dest) => {
                let _ = spec.add_node(dest.clone(), Kind::Fifo, 0o600);
            }
            Item::Char(dest, major, minor) => {
                let kind = Kind::CharDevice {
                    major: u32::from(*major),
                    minor: u32::from(*minor),
                };
                let _ = spec.add_node(dest.clone(), kind, 0o600);
            }
        }
    }
    let Ok(entries) = spec.collect() else {
        return;
    };
    let mut w = ChunkWriter::new(Vec::<Vec<u8>>::new(), 4096);
    if write_cpio(&entries, &mut w, &Progress::new()).is_err() {
        return;
    }
    let (chunks, _) = w.finish().expect("finish the archive");
    let archive = chunks.concat();
    let members = read_newc(&archive).unwrap_or_else(|e| panic!("unreadable archive: {e}"));
    assert_eq!(members.len(), entries.len());
    for (m, e) in members.iter().zip(&entries) {
        assert_eq!(m.0, e.path);
        assert!(
            !m.0.starts_with('/')
                && !m
                    .0
                    .split('/')
                    .any(|c| c == ".." || c == "." || c.is_empty())
        );
        assert_eq!(m.1 & 0o7777, e.mode & 0o7777, "{}", e.path);
        match &e.kind {
            Kind::Symlink { target } => assert_eq!(m.3, target.as_bytes()),
            Kind::Dir => assert_eq!(m.1 & 0o170000, 0o040000),
            Kind::File { size, .. } => assert_eq!(m.3.len() as u64, *size, "{}", e.path),
            _ => {}
        }
    }
});
