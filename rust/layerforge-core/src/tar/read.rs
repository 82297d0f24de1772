//! Reading tar streams that come from untrusted layers, member by member.
//!
//! Names, link targets, sizes and numbers mean what the `tar` crate (which `nydus-image`
//! reads layers with) makes of them: ustar, GNU (`L`/`K` long names) and PAX (`x`) headers,
//! octal and base-256 numbers, a PAX `size`/`uid`/`gid` over the header's. Unlike it, every
//! failure is an error naming the member and where its header starts, extension data is
//! bounded ([`MAX_EXTENSION`]), and memory never depends on a size the input states.

use std::fmt::Write as _;
use std::io::{self, Read};

use crate::error::{Error, Result};

const BLOCK: u64 = 512;
/// The most bytes of PAX records or of a GNU long name/link one member may carry.
pub const MAX_EXTENSION: u64 = 1 << 20;

/// A PAX record: key and value.
pub type PaxRecord = (Vec<u8>, Vec<u8>);

/// One member's header, as its extension headers amend it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub path: Vec<u8>,
    /// The typeflag byte (`0`, `5`, `2`, ...; NUL is `0`).
    pub kind: u8,
    /// Bytes of data that follow the header.
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Device numbers, read for character and block devices of ustar/GNU headers.
    pub dev: (u32, u32),
    pub link: Option<Vec<u8>>,
    /// The records of the PAX header describing this member, in order.
    pub pax: Vec<PaxRecord>,
    /// Where the member's (first extension) header starts in the stream.
    pub offset: u64,
}

impl Member {
    /// The member's name for messages: lossy UTF-8, control characters escaped.
    pub fn shown(&self) -> String {
        shown(&self.path)
    }
}

/// Bytes from input as text for a one-line message: lossy UTF-8 with control characters
/// (C0, DEL, C1, line separators) escaped as `\xNN` / `\u{NNNN}`, cut at 256 characters.
pub fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 256 {
            out.push_str("...");
            break;
        }
        let code = c as u32;
        if code < 0x20 || (0x7f..0xa0).contains(&code) {
            let _ = write!(out, "\\x{code:02x}");
        } else if code == 0x2028 || code == 0x2029 {
            let _ = write!(out, "\\u{code:04x}");
        } else {
            out.push(c);
        }
    }
    out
}

/// A tar stream read member by member: [`TarReader::next_member`], then the member's data
/// with [`TarReader::read_data`] (what is not read is skipped).
pub struct TarReader<R> {
    inner: R,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Data bytes of the current member not read yet, and the padding after them.
    left: u64,
    pad: u64,
    /// The current member, for messages about its data.
    current: Option<(String, u64, u64)>,
    done: bool,
}

/// Extension headers read for the member that follows them.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
    first_offset: Option<u64>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            pos: 0,
            left: 0,
            pad: 0,
            current: None,
            done: false,
        }
    }

    /// The underlying reader, positioned after the last byte the archive used.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next member, or `None` after the end-of-archive block (or at the end of the
    /// stream between members).
    pub fn next_member(&mut self) -> Result<Option<Member>> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        self.current = None;
        let mut pending = Pending::default();
        loop {
            let at = self.pos;
            let Some(block) = self.read_block()? else {
                self.done = true;
                if let Some(first) = pending.first_offset {
                    return Err(fail(
                        "",
                        first,
                        "extension headers describe a member that does not follow them",
                    ));
                }
                return Ok(None);
            };
            let h = Header(&block);
            let name = shown(&h.path_bytes());
            check_sum(&h).map_err(|m| fail(&name, at, m))?;
            let kind = match block[156] {
                0 => b'0',
                k => k,
            };
            let recognized = h.is_ustar() || h.is_gnu();
            let ext = recognized && matches!(kind, b'L' | b'K' | b'x');
            // A PAX size, uid or gid overrides the header's (not for extension headers).
            let pax = if ext { None } else { pending.pax.as_deref() };
            let size = match pax.and_then(|p| pax_u64(p, b"size")) {
                Some(s) => s,
                None => num(h.field(124, 12)).map_err(|m| fail(&name, at, format!("size: {m}")))?,
            };
            self.pos += BLOCK;
            let padded = size
                .checked_add(BLOCK - 1)
                .map(|s| s & !(BLOCK - 1))
                .filter(|s| self.pos.checked_add(*s).is_some())
                .ok_or_else(|| fail(&name, at, format!("size {size} is past any stream's end")))?;
            if ext {
                let what = match kind {
                    b'L' => "GNU long name",
                    b'K' => "GNU long link name",
                    _ => "PAX header",
                };
                let slot = match kind {
                    b'L' => &mut pending.long_name,
                    b'K' => &mut pending.long_link,
                    _ => &mut pending.pax,
                };
                if slot.is_some() {
                    return Err(fail(
                        &name,
                        at,
                        format!("a second {what} for the same member"),
                    ));
                }
                if size > MAX_EXTENSION {
                    return Err(fail(
                        &name,
                        at,
                        format!(
                            "{what} of {size} bytes is larger than the {MAX_EXTENSION} allowed"
                        ),
                    ));
                }
                let mut data = vec![0u8; size as usize];
                self.fill(&mut data)
                    .map_err(|_| fail(&name, at, format!("the archive ends inside its {what}")))?;
                self.skip(padded - size)
                    .map_err(|_| fail(&name, at, "the archive ends inside its padding"))?;
                if kind == b'x' {
                    pax_records(&data).map_err(|m| fail(&name, at, m))?;
                }
                *slot = Some(data);
                pending.first_offset.get_or_insert(at);
                continue;
            }
            let path = match (&pending.long_name, pax.and_then(|p| pax_value(p, b"path"))) {
                (Some(long), _) => strip_nul(long).to_vec(),
                (None, Some(p)) => p.to_vec(),
                (None, None) => h.path_bytes(),
            };
            let name = shown(&path);
            let link = match (
                &pending.long_link,
                pax.and_then(|p| pax_value(p, b"linkpath")),
            ) {
                (Some(long), _) => Some(strip_nul(long).to_vec()),
                (None, Some(l)) => Some(l.to_vec()),
                (None, None) => {
                    let l = truncate(h.field(157, 100));
                    (!l.is_empty()).then(|| l.to_vec())
                }
            };
            let field = |what: &str, r: std::result::Result<u64, String>| {
                r.map_err(|m| fail(&name, at, format!("{what}: {m}")))
            };
            let uid = match pax.and_then(|p| pax_u64(p, b"uid")) {
                Some(v) => v,
                None => field("uid", num(h.field(108, 8)))?,
            };
            let gid = match pax.and_then(|p| pax_u64(p, b"gid")) {
                Some(v) => v,
                None => field("gid", num(h.field(116, 8)))?,
            };
            let mode = field("mode", octal(h.field(100, 8)))?;
            let mtime = field("mtime", num(h.field(136, 12)))?;
            let dev = if recognized && matches!(kind, b'3' | b'4') {
                let major = field("device major", octal(h.field(329, 8)))?;
                let minor = field("device minor", octal(h.field(337, 8)))?;
                (major as u32, minor as u32)
            } else {
                (0, 0)
            };
            let pax = match &pending.pax {
                Some(p) => pax_records(p).map_err(|m| fail(&name, at, m))?,
                None => Vec::new(),
            };
            self.left = size;
            self.pad = padded - size;
            self.current = Some((name, pending.first_offset.unwrap_or(at), size));
            return Ok(Some(Member {
                path,
                kind,
                size,
                mode: mode as u32,
                uid,
                gid,
                mtime,
                dev,
                link,
                pax,
                offset: pending.first_offset.unwrap_or(at),
            }));
        }
    }

    /// Read the current member's data (0 at its end). A stream that ends first is an error
    /// naming the member.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = loop {
            match self.inner.read(&mut buf[..n]) {
                Ok(k) => break k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.data_error(&e.to_string())),
            }
        };
        if got == 0 {
            return Err(self.data_error("the archive ends inside its data"));
        }
        self.pos += got as u64;
        self.left -= got as u64;
        Ok(got)
    }

    /// Fill `buf` from the current member's data.
    pub fn read_data_exact(&mut self, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.read_data(buf)?;
            if n == 0 {
                return Err(self.data_error("the member's data is shorter than asked for"));
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    fn data_error(&self, what: &str) -> Error {
        match &self.current {
            Some((name, at, size)) => fail(
                name,
                *at,
                format!("{what} ({} of {size} bytes read)", size - self.left),
            ),
            None => Error::Corrupt(format!("tar stream: {what}")),
        }
    }

    /// Skip what is left of the current member.
    fn skip_rest(&mut self) -> Result<()> {
        if self.left > 0 {
            let left = self.left;
            self.skip(left)
                .map_err(|_| self.data_error("the archive ends inside its data"))?;
            self.left = 0;
        }
        let pad = self.pad;
        self.pad = 0;
        self.skip(pad)
            .map_err(|_| self.data_error("the archive ends inside its padding"))
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let k = (n as usize).min(scratch.len());
            self.fill(&mut scratch[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn fill(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.inner.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => {
                    self.pos += k as u64;
                    buf = &mut buf[k..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next header block; `None` at the end of the stream or at an all-zero block.
    fn read_block(&mut self) -> Result<Option<[u8; 512]>> {
        let at = self.pos;
        let mut block = [0u8; 512];
        let mut got = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::Corrupt(format!(
                        "tar stream: cannot read the header at byte {at}: {e}"
                    )))
                }
            }
        }
        self.pos += got as u64;
        if got == 0 {
            return Ok(None);
        }
        if got < block.len() {
            return Err(Error::Corrupt(format!(
                "tar stream: the archive ends inside the header at byte {at} ({got} of 512 bytes)"
            )));
        }
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        // Not consumed yet: `next_member` counts the block once it knows the member.
        self.pos -= BLOCK;
        Ok(Some(block))
    }
}

fn fail(name: &str, at: u64, msg: impl std::fmt::Display) -> Error {
    if name.is_empty() {
        Error::Corrupt(format!("tar header at byte {at}: {msg}"))
    } else {
        Error::Corrupt(format!("member '{name}' (header at byte {at}): {msg}"))
    }
}

struct Header<'a>(&'a [u8; 512]);

impl Header<'_> {
    fn field(&self, at: usize, len: usize) -> &[u8] {
        &self.0[at..at + len]
    }

    fn is_ustar(&self) -> bool {
        self.field(257, 6) == b"ustar\0" && self.field(263, 2) == b"00"
    }

    fn is_gnu(&self) -> bool {
        self.field(257, 6) == b"ustar " && self.field(263, 2) == b" \0"
    }

    /// The name field, joined to the ustar prefix.
    fn path_bytes(&self) -> Vec<u8> {
        let name = self.field(0, 100);
        if self.is_ustar() && (self.0[345] != 0 || name.contains(&b'\\')) {
            let mut out = Vec::new();
            let prefix = truncate(self.field(345, 155));
            if !prefix.is_empty() {
                out.extend_from_slice(prefix);
                out.push(b'/');
            }
            out.extend_from_slice(truncate(name));
            out
        } else {
            truncate(name).to_vec()
        }
    }
}

fn check_sum(h: &Header<'_>) -> std::result::Result<(), String> {
    let sum: u64 = h.0[..148]
        .iter()
        .chain(&h.0[156..])
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + 8 * 32;
    let want = octal(h.field(148, 8)).map_err(|m| format!("checksum: {m}"))?;
    if want != sum {
        return Err(format!(
            "header checksum {want:o} does not match its bytes ({sum:o}): not a tar header"
        ));
    }
    Ok(())
}

fn truncate(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn strip_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\0").unwrap_or(b)
}

/// An octal field (NUL-terminated, blank-padded).
fn octal(field: &[u8]) -> std::result::Result<u64, String> {
    let text = truncate(field);
    let shown_text = || shown(text);
    let s = std::str::from_utf8(text).map_err(|_| format!("'{}' is not a number", shown_text()))?;
    u64::from_str_radix(s.trim(), 8)
        .map_err(|_| format!("'{}' is not an octal number", shown_text()))
}

/// A numeric field: octal, or base-256 when the first byte's high bit is set (the value is
/// the last 8 bytes, for 8-byte fields the first byte without that bit included).
fn num(field: &[u8]) -> std::result::Result<u64, String> {
    if field[0] & 0x80 == 0 {
        return octal(field);
    }
    let (first, rest) = if field.len() == 8 {
        (u64::from(field[0] ^ 0x80), &field[1..])
    } else {
        (0, &field[field.len() - 8..])
    };
    Ok(rest.iter().fold(first, |v, &b| (v << 8) | u64::from(b)))
}

/// The records of a PAX header: `LEN KEY=VALUE\n` each, LEN counting the whole record.
pub fn pax_records(data: &[u8]) -> std::result::Result<Vec<PaxRecord>, String> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            // The tar crate stops at the first empty line (normally the end).
            break;
        }
        let bad = || format!("PAX record '{}' is malformed", shown(line));
        let space = line.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&line[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(bad)?;
        if line.len() + 1 != len {
            return Err(format!(
                "PAX record '{}' says it is {len} bytes long but is {}",
                shown(line),
                line.len() + 1
            ));
        }
        let kv = &line[space + 1..];
        let eq = kv.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        out.push((kv[..eq].to_vec(), kv[eq + 1..].to_vec()));
    }
    Ok(out)
}

/// The first `key` record's value (records already checked by [`pax_records`]).
fn pax_value<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    data.split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let kv = &l[l.iter().position(|&b| b == b' ')? + 1..];
            let eq = kv.iter().position(|&b| b == b'=')?;
            (&kv[..eq] == key).then(|| &kv[eq + 1..])
        })
        .next()
}

/// A PAX number the `tar` crate would apply: the first `key` record, if all digits.
fn pax_u64(data: &[u8], key: &[u8]) -> Option<u64> {
    std::str::from_utf8(pax_value(data, key)?)
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (path, kind, size, link, data) of every member.
    type Listing = Vec<(Vec<u8>, u8, u64, Option<Vec<u8>>, Vec<u8>)>;

    fn list(data: &[u8]) -> Result<Listing> {
        let mut r = TarReader::new(data);
        let mut out = Vec::new();
        while let Some(m) = r.next_member()? {
            let mut buf = vec![0u8; m.size.min(1 << 20) as usize];
            if m.kind == b'0' {
                r.read_data_exact(&mut buf)?;
            } else {
                buf.clear();
            }
            out.push((m.path, m.kind, m.size, m.link, buf));
        }
        Ok(out)
    }

    fn builder_tar(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    #[test]
    fn long_names_pax_and_prefixes_read_as_the_tar_crate_does() {
        let long = "d/".repeat(80) + "file";
        let data = builder_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o640);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, &long, &b"hello"[..]).unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_uid(0);
            h.set_gid(0);
            b.append_link(&mut h, "l", "x".repeat(150)).unwrap();
            b.append_pax_extensions([("path", &b"pax/name"[..]), ("uid", &b"70000"[..])])
                .unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_uid(1);
            h.set_gid(0);
            b.append_data(&mut h, "short", &b"z"[..]).unwrap();
        });
        let got = list(&data).unwrap();
        assert_eq!(got[0].0, long.as_bytes());
        assert_eq!(got[0].4, b"hello");
        assert_eq!(got[1].3.as_deref(), Some("x".repeat(150).as_bytes()));
        assert_eq!(got[2].0, b"pax/name");
        let mut r = TarReader::new(&data[..]);
        let mut last = None;
        while let Some(m) = r.next_member().unwrap() {
            last = Some(m);
        }
        let last = last.unwrap();
        assert_eq!(last.uid, 70000);
        assert_eq!(last.pax.len(), 2);
        // And the tar crate agrees.
        let mut a = tar::Archive::new(&data[..]);
        let theirs: Vec<Vec<u8>> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(theirs, got.iter().map(|g| g.0.clone()).collect::<Vec<_>>());
    }

    fn raw(name: &[u8], size: &[u8; 12], kind: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(size);
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[257..265].copy_from_slice(b"ustar\x0000");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    #[test]
    fn hostile_headers_are_errors_naming_the_member() {
        let err = |data: &[u8]| list(data).unwrap_err().to_string();
        let e = err(&raw(b"bad", b"12z4567\0\0\0\0\0", b'0'));
        assert!(
            e.contains("member 'bad' (header at byte 0): size: '12z4567'"),
            "{e}"
        );
        let e = err(&raw(b"neg", b"-0000000001\0", b'0'));
        assert!(e.contains("'neg'") && e.contains("size"), "{e}");
        let mut big = raw(b"big", b"77777777777\0", b'0').to_vec();
        big.extend_from_slice(b"only this");
        let e = err(&big);
        assert!(
            e.contains("'big'") && e.contains("ends inside its data"),
            "{e}"
        );
        assert!(e.contains("9 of 8589934591 bytes"), "{e}");
        let huge = raw(
            b"huge",
            &[
                0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            b'5',
        );
        let e = err(&huge);
        assert!(e.contains("'huge'") && e.contains("past any stream"), "{e}");
        let mut pax = raw(b"././@PaxHeader", b"00000000020\0", b'x').to_vec();
        pax.extend_from_slice(b"99 path=x\n");
        pax.resize(1024, 0);
        pax.extend_from_slice(&raw(b"f", b"00000000000\0", b'0'));
        let e = err(&pax);
        assert!(
            e.contains("PAX record '99 path=x' says it is 99 bytes"),
            "{e}"
        );
        let e = err(&raw(b"././@PaxHeader", b"77777777777\0", b'x'));
        assert!(
            e.contains("PAX header of 8589934591 bytes is larger"),
            "{e}"
        );
        let e = err(&raw(b"a", b"00000000001\0", b'0')[..300]);
        assert!(e.contains("ends inside the header at byte 0"), "{e}");
        let mut bad_sum = raw(b"x\x1b[2J", b"00000000000\0", b'0');
        bad_sum[0] = b'y';
        let e = err(&bad_sum);
        assert!(e.contains("'y\\x1b[2J'") && e.contains("checksum"), "{e}");
        let lonely = raw(b"././@LongLink", b"00000000002\0", b'L');
        let mut l = lonely.to_vec();
        l.extend_from_slice(b"ab");
        l.resize(1024, 0);
        let e = err(&l);
        assert!(e.contains("does not follow"), "{e}");
    }
}
