//! The Nydus conversion of images made of well-formed tars with arbitrary members (names
//! from a small alphabet so that paths collide: replacements, whiteouts, opaque markers,
//! hard links, symlinks, directories turning into files across layers): one error line, or
//! the same bytes whatever the thread count, blobs under their digests and a bootstrap that
//! reads back; never a panic.
#![no_main]

use arbitrary::Arbitrary;
use layerforge_core::blob::BlobStore;
use layerforge_core::digest::Digest;
use layerforge_core::progress::Progress;
use layerforge_core::rafs::algo::{Compressor, Digester};
use layerforge_core::rafs::convert::{convert, ConvertOptions, ConvertResult, LayerInput};
use layerforge_core::rafs::reader::read_bootstrap;
use layerforge_core::Error;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Kind {
    File(u8, u16),
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Whiteout,
    Opaque,
    Fifo,
}

#[derive(Arbitrary, Debug)]
struct Member {
    path: Vec<u8>,
    kind: Kind,
    mode: u16,
    xattr: Option<u8>,
}

/// Path bytes from a small alphabet, so that members of an image meet.
fn path(raw: &[u8]) -> String {
    let mut p: String = raw
        .iter()
        .take(12)
        .map(|b| ['a', 'b', '/', '.', 'c'][usize::from(*b) % 5])
        .collect();
    if p.is_empty() {
        p.push('a');
    }
    p
}

fn tar_of(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members.iter().take(24) {
        let mut name = path(&m.path);
        let mut h = tar::Header::new_ustar();
        h.set_mode(u32::from(m.mode) & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        let mut data = Vec::new();
        match &m.kind {
            Kind::File(byte, len) => {
                data = vec![*byte; usize::from(*len) * 7];
                h.set_entry_type(tar::EntryType::Regular);
            }
            Kind::Dir => h.set_entry_type(tar::EntryType::Directory),
            Kind::Symlink(t) | Kind::Hardlink(t) => {
                let hard = matches!(m.kind, Kind::Hardlink(_));
                h.set_entry_type(if hard {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                });
                if h.set_link_name_literal(path(t)).is_err() {
                    continue;
                }
            }
            Kind::Whiteout | Kind::Opaque => {
                let (dir, base) = match name.rsplit_once('/') {
                    Some((d, b)) => (format!("{d}/"), b.to_string()),
                    None => (String::new(), name.clone()),
                };
                name = if matches!(m.kind, Kind::Opaque) {
                    format!("{dir}.wh..wh..opq")
                } else {
                    format!("{dir}.wh.{base}")
                };
                h.set_entry_type(tar::EntryType::Regular);
            }
            Kind::Fifo => h.set_entry_type(tar::EntryType::Fifo),
        }
        if let Some(x) = m.xattr {
            let value = [x; 3];
            let _ = b.append_pax_extensions([("SCHILY.xattr.user.k", &value[..])]);
        }
        h.set_size(data.len() as u64);
        if h.set_path(&name).is_err() {
            // Names the tar crate will not write (such as "..") are also written raw.
            let bytes = name.as_bytes();
            if bytes.len() > 100 {
                continue;
            }
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        }
        h.set_cksum();
        let _ = b.append(&h, &data[..]);
    }
    b.into_inner().unwrap_or_default()
}

fn run(
    dir: &std::path::Path,
    layers: &[Vec<u8>],
    threads: usize,
) -> (Result<ConvertResult, Error>, BlobStore) {
    let inputs: Vec<LayerInput> = layers
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let path = dir.join(format!("layer{i}"));
            std::fs::write(&path, data).expect("write the layer");
            LayerInput {
                path,
                digest: Some(Digest::of(data)),
                size: Some(data.len() as u64),
                diff_id: Some(Digest::of(data)),
                label: format!("layer {}", i + 1),
            }
        })
        .collect();
    let store = BlobStore::open(dir.join("blobs"), dir.join("tmp")).expect("store");
    let opts = ConvertOptions {
        chunk_size: 4096,
        compressor: Compressor::Zstd,
        digester: Digester::Blake3,
        threads,
        prefetch: vec!["/a".into(), "/b/c".into()],
        dedup_lower: true,
    };
    (
        convert(&inputs, &store, &opts, None, &Progress::new()),
        store,
    )
}

fuzz_target!(|image: Vec<Vec<Member>>| {
    let layers: Vec<Vec<u8>> = image.iter().take(4).map(|l| tar_of(l)).collect();
    if layers.is_empty() {
        return;
    }
    let one = tempfile::tempdir().expect("scratch");
    let two = tempfile::tempdir().expect("scratch");
    let (a, store) = run(one.path(), &layers, 1);
    let (b, _) = run(two.path(), &layers, 3);
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                a.bootstrap, b.bootstrap,
                "the bootstrap depends on the thread count"
            );
            let ids = |r: &ConvertResult| r.blobs.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "the blobs depend on the thread count");
            read_bootstrap(&a.bootstrap).expect("the bootstrap reads back");
            for l in a.layers.iter().filter_map(|l| l.blob) {
                let file = std::fs::read(store.path_of(&l.0)).expect("the blob");
                assert_eq!(Digest::of(&file), l.0);
            }
        }
        (Err(a), Err(b)) => {
            let (a, b) = (a.to_string(), b.to_string());
            assert!(!a.contains('\n') && !a.contains("invariant"), "{a}");
            assert_eq!(a, b, "the error depends on the thread count");
        }
        (a, b) => panic!(
            "one thread count failed, the other not: {:?} / {:?}",
            a.err(),
            b.err()
        ),
    }
});
