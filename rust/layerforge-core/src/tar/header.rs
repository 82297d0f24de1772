//! ustar header blocks, with a PAX extended header in front when a value does not fit.

use crate::entry::{Entry, Kind};
use crate::error::{Error, Result};

pub const BLOCK_SIZE: usize = 512;

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Largest value of a 7-digit octal field (mode, uid, gid, device numbers).
const MAX_OCTAL_7: u64 = 0o777_7777;
/// Name of every PAX extended header member; fixed so archives do not depend on the writer.
const PAX_HEADER_NAME: &str = "././@PaxHeader";

/// Append the header block(s) for `e` to `out`: an optional PAX `x` member, then the ustar block.
pub fn encode_header(e: &Entry, out: &mut Vec<u8>) -> Result<()> {
    let mut name = e.path.clone();
    let (typeflag, link, size, dev) = match &e.kind {
        Kind::File { size, .. } => (b'0', None, *size, (0, 0)),
        Kind::Hardlink { target } => (b'1', Some(target.as_str()), 0, (0, 0)),
        Kind::Symlink { target } => (b'2', Some(target.as_str()), 0, (0, 0)),
        Kind::CharDevice { major, minor } => (b'3', None, 0, (*major, *minor)),
        Kind::BlockDevice { major, minor } => (b'4', None, 0, (*major, *minor)),
        Kind::Dir => {
            name.push('/');
            (b'5', None, 0, (0, 0))
        }
        Kind::Fifo => (b'6', None, 0, (0, 0)),
    };
    if u64::from(dev.0) > MAX_OCTAL_7 || u64::from(dev.1) > MAX_OCTAL_7 {
        return Err(Error::input(format!(
            "device numbers {}:{} of '/{}' are too large for a tar header",
            dev.0, dev.1, e.path
        )));
    }

    let mut pax: Vec<(&str, String)> = Vec::new();
    let split = ustar_split(&name);
    if split.is_none() {
        pax.push(("path", name.clone()));
    }
    if let Some(l) = link {
        if l.len() > NAME_LEN || !l.is_ascii() {
            pax.push(("linkpath", l.to_owned()));
        }
    }
    if size > MAX_OCTAL_11 {
        pax.push(("size", size.to_string()));
    }
    if e.mtime > MAX_OCTAL_11 {
        pax.push(("mtime", e.mtime.to_string()));
    }
    if u64::from(e.uid) > MAX_OCTAL_7 {
        pax.push(("uid", e.uid.to_string()));
    }
    if u64::from(e.gid) > MAX_OCTAL_7 {
        pax.push(("gid", e.gid.to_string()));
    }

    if !pax.is_empty() {
        let records = pax_records(&pax);
        let pax_hdr = UstarFields {
            prefix: "",
            name: PAX_HEADER_NAME,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: e.mtime.min(MAX_OCTAL_11),
            typeflag: b'x',
            link: "",
            dev: (0, 0),
        };
        pax_hdr.encode(out);
        out.extend_from_slice(&records);
        pad_to_block(out);
    }

    let fallback_name;
    let (prefix, short_name) = match split {
        Some(s) => s,
        None => {
            fallback_name = ascii_fallback(&name, NAME_LEN);
            ("", fallback_name.as_str())
        }
    };
    let fallback_link;
    let link_field = match link {
        Some(l) if l.len() <= NAME_LEN && l.is_ascii() => l,
        Some(l) => {
            fallback_link = ascii_fallback(l, NAME_LEN);
            fallback_link.as_str()
        }
        None => "",
    };
    UstarFields {
        prefix,
        name: short_name,
        mode: e.mode,
        uid: u64::from(e.uid).min(MAX_OCTAL_7) as u32,
        gid: u64::from(e.gid).min(MAX_OCTAL_7) as u32,
        size: if size > MAX_OCTAL_11 { 0 } else { size },
        mtime: e.mtime.min(MAX_OCTAL_11),
        typeflag,
        link: link_field,
        dev,
    }
    .encode(out);
    Ok(())
}

/// Split an ASCII name into ustar (prefix, name) fields, or `None` if PAX is needed.
fn ustar_split(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= NAME_LEN {
        return Some(("", name));
    }
    // prefix = name[..i], name = name[i+1..], split at a '/', both fields within bounds.
    let lo = name.len().saturating_sub(NAME_LEN + 1);
    let hi = PREFIX_LEN.min(name.len() - 1);
    (lo..=hi)
        .find(|&i| name.as_bytes()[i] == b'/' && i + 1 < name.len())
        .map(|i| (&name[..i], &name[i + 1..]))
}

/// An ASCII stand-in for readers without PAX support (PAX readers ignore it).
fn ascii_fallback(s: &str, max: usize) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii() && b != 0 {
                b as char
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// `"%d %s=%s\n"` records, where the length counts itself.
fn pax_records(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        let base = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = base + digits(base);
        if digits(len) != digits(base) {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
    }
    out
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

fn pad_to_block(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK_SIZE;
    if rem != 0 {
        out.resize(out.len() + BLOCK_SIZE - rem, 0);
    }
}

struct UstarFields<'a> {
    prefix: &'a str,
    name: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &'a str,
    dev: (u32, u32),
}

impl UstarFields<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut h = [0u8; BLOCK_SIZE];
        put_str(&mut h[0..100], self.name);
        put_octal(&mut h[100..108], u64::from(self.mode));
        put_octal(&mut h[108..116], u64::from(self.uid));
        put_octal(&mut h[116..124], u64::from(self.gid));
        put_octal(&mut h[124..136], self.size);
        put_octal(&mut h[136..148], self.mtime);
        h[148..156].copy_from_slice(b"        ");
        h[156] = self.typeflag;
        put_str(&mut h[157..257], self.link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let (uname, gname) = (owner_name(self.uid), owner_name(self.gid));
        put_str(&mut h[265..297], uname);
        put_str(&mut h[297..329], gname);
        put_octal(&mut h[329..337], u64::from(self.dev.0));
        put_octal(&mut h[337..345], u64::from(self.dev.1));
        put_str(&mut h[345..500], self.prefix);
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        // Six octal digits, NUL, space: the traditional layout every reader accepts.
        let cks = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(cks.as_bytes());
        out.extend_from_slice(&h);
    }
}

fn owner_name(id: u32) -> &'static str {
    if id == 0 {
        "root"
    } else {
        ""
    }
}

fn put_str(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Zero-padded octal filling all but the last byte, which stays NUL. Callers bound the value.
fn put_octal(field: &mut [u8], v: u64) {
    let width = field.len() - 1;
    let s = format!("{v:0width$o}");
    debug_assert!(
        s.len() == width,
        "value {v} does not fit {width} octal digits"
    );
    field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Content;
    use std::sync::Arc;

    fn file(path: &str, size: u64) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File {
                content: Content::Bytes(Arc::from(vec![])),
                size,
            },
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
        }
    }

    fn checksum_ok(h: &[u8]) -> bool {
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h[..512].to_vec();
        copy[148..156].copy_from_slice(b"        ");
        stored == copy.iter().map(|&b| u32::from(b)).sum::<u32>()
    }

    #[test]
    fn short_name_is_plain_ustar() {
        let mut out = Vec::new();
        encode_header(&file("usr/bin/sh", 5), &mut out).unwrap();
        assert_eq!(out.len(), 512);
        assert_eq!(&out[0..10], b"usr/bin/sh");
        assert_eq!(&out[100..108], b"0000755\0");
        assert_eq!(&out[124..136], b"00000000005\0");
        assert_eq!(&out[136..148], b"00000000001\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[265..269], b"root");
        assert!(checksum_ok(&out));
    }

    #[test]
    fn long_ascii_name_uses_prefix() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let mut out = Vec::new();
        encode_header(&file(&long, 0), &mut out).unwrap();
        assert_eq!(out.len(), 512, "no PAX needed");
        assert_eq!(&out[345..465], "d".repeat(120).as_bytes());
        assert_eq!(&out[0..90], "f".repeat(90).as_bytes());
    }

    #[test]
    fn unsplittable_or_non_ascii_names_use_pax() {
        for name in ["x".repeat(300), "caf\u{e9}/\u{65e5}\u{672c}".to_string()] {
            let mut out = Vec::new();
            encode_header(&file(&name, 0), &mut out).unwrap();
            assert_eq!(out.len(), 3 * 512);
            assert_eq!(out[156], b'x');
            assert!(checksum_ok(&out));
            let rec = format!(" path={name}\n");
            let body = &out[512..1024];
            let text = String::from_utf8_lossy(body);
            assert!(text.contains(&rec), "{text}");
            let len: usize = text.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(
                len,
                text.trim_end_matches('\0').len(),
                "record length counts itself"
            );
        }
    }

    #[test]
    fn huge_size_goes_to_pax() {
        let mut out = Vec::new();
        encode_header(&file("big", MAX_OCTAL_11 + 1), &mut out).unwrap();
        let text = String::from_utf8_lossy(&out[512..1024]);
        assert!(text.contains(&format!("size={}", MAX_OCTAL_11 + 1)));
        assert_eq!(&out[1024 + 124..1024 + 136], b"00000000000\0");
    }

    #[test]
    fn pax_length_boundary() {
        // base 7 -> "8 a=bcd\n"? len must be self-consistent across digit growth.
        for vlen in 0..200 {
            let v = "v".repeat(vlen);
            let rec = pax_records(&[("k", v)]);
            let text = String::from_utf8(rec.clone()).unwrap();
            let len: usize = text.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(len, rec.len());
        }
    }
}
