//! The core's tar reader on arbitrary bytes: never a panic, never more memory than the
//! input explains, and, where the `tar` crate (what nydus-image reads layers with) reads
//! the stream without error, the same members with the same fields and data.
#![no_main]

use std::io::Read;

use layerforge_core::tar::read::TarReader;
use libfuzzer_sys::fuzz_target;

/// What both readers must agree on, member by member.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: Vec<u8>,
    kind: u8,
    size: u64,
    link: Option<Vec<u8>>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    dev: (u32, u32),
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    data: Vec<u8>,
}

fn ours(data: &[u8]) -> (Vec<Seen>, bool) {
    let mut r = TarReader::new(data);
    let mut out = Vec::new();
    loop {
        match r.next_member() {
            Ok(Some(m)) => {
                let mut buf = vec![0u8; m.size.min(data.len() as u64) as usize];
                let body = if m.kind == b'0' || m.kind == b'7' {
                    if r.read_data_exact(&mut buf).is_err() || m.size > data.len() as u64 {
                        return (out, false);
                    }
                    buf
                } else {
                    Vec::new()
                };
                let stop = m.kind == b'S';
                out.push(Seen {
                    path: m.path,
                    kind: m.kind,
                    size: m.size,
                    link: m.link,
                    mode: m.mode,
                    uid: m.uid,
                    gid: m.gid,
                    mtime: m.mtime,
                    dev: m.dev,
                    pax: if matches!(m.kind, b'x' | b'g') {
                        Vec::new()
                    } else {
                        m.pax
                    },
                    data: body,
                });
                if stop {
                    // GNU sparse: the crate reads it differently; the core refuses it anyway.
                    return (out, true);
                }
            }
            Ok(None) => return (out, true),
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains('\n') && !text.contains('\x1b'), "{text:?}");
                return (out, false);
            }
        }
    }
}

fn theirs(data: &[u8]) -> (Vec<Seen>, bool) {
    let mut a = tar::Archive::new(data);
    let mut out = Vec::new();
    let Ok(entries) = a.entries() else {
        return (out, false);
    };
    for e in entries {
        let Ok(mut e) = e else {
            return (out, false);
        };
        let h = e.header().clone();
        let kind = h.entry_type().as_byte();
        let kind = if kind == 0 { b'0' } else { kind };
        if kind == b'S' {
            return (out, true);
        }
        let recognized = h.as_ustar().is_some() || h.as_gnu().is_some();
        let fields = (|| -> std::io::Result<_> {
            let dev = if recognized && matches!(kind, b'3' | b'4') {
                (
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                )
            } else {
                (0, 0)
            };
            Ok((h.mode()?, h.uid()?, h.gid()?, h.mtime()?, dev))
        })();
        let Ok((mode, uid, gid, mtime, dev)) = fields else {
            return (out, false);
        };
        let path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let size = e.size();
        let mut pax = Vec::new();
        // The core refuses malformed PAX records whatever member they describe (the crate
        // only when they are read); the records of `x`/`g` members themselves are not compared.
        match e.pax_extensions() {
            Ok(Some(exts)) => {
                for x in exts {
                    let Ok(x) = x else {
                        return (out, false);
                    };
                    if !matches!(kind, b'x' | b'g') {
                        pax.push((x.key_bytes().to_vec(), x.value_bytes().to_vec()));
                    }
                }
            }
            Ok(None) => {}
            Err(_) => return (out, false),
        }
        let mut body = Vec::new();
        if (kind == b'0' || kind == b'7')
            && (e.read_to_end(&mut body).is_err() || body.len() as u64 != size)
        {
            return (out, false);
        }
        out.push(Seen {
            path,
            kind,
            size,
            link,
            mode,
            uid,
            gid,
            mtime,
            dev,
            pax,
            data: body,
        });
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let (mine, mine_ok) = ours(data);
    let (reference, their_ok) = theirs(data);
    if mine_ok && their_ok {
        assert_eq!(mine, reference, "the readers disagree");
    } else {
        // Where one reader fails, the members both read before must still agree.
        let n = mine.len().min(reference.len());
        assert_eq!(
            mine[..n],
            reference[..n],
            "the readers disagree before a failure"
        );
        // The core may only be stricter where it bounds memory (extension data over
        // MAX_EXTENSION, which inputs this small cannot reach).
        assert!(
            !their_ok || mine_ok,
            "the core refused a stream the tar crate reads"
        );
    }
});
