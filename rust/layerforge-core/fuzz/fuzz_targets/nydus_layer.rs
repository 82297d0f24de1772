//! The whole Nydus conversion of an image whose one or two layers are arbitrary blobs
//! (gzip, zstd or plain tar, as sniffed): one error line, or blobs under their digests and a
//! bootstrap that reads back and whose every name lies below '/'; never a panic, and never
//! a scratch file left behind.
#![no_main]

use layerforge_core::blob::BlobStore;
use layerforge_core::progress::Progress;
use layerforge_core::rafs::algo::{Compressor, Digester};
use layerforge_core::rafs::convert::{convert, ConvertOptions, LayerInput};
use layerforge_core::rafs::reader::read_bootstrap;
use layerforge_core::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * 512).min(rest.len());
    let parts: Vec<&[u8]> = if split == 0 {
        vec![rest]
    } else {
        vec![&rest[..at], &rest[at..]]
    };
    let dir = tempfile::tempdir().expect("scratch directory");
    let mut layers = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let path = dir.path().join(format!("layer{i}"));
        std::fs::write(&path, p).expect("write the layer");
        layers.push(LayerInput {
            path,
            digest: None,
            size: None,
            diff_id: None,
            label: format!("layer {}", i + 1),
        });
    }
    let store = BlobStore::open(dir.path().join("blobs"), dir.path().join("tmp")).expect("store");
    let opts = ConvertOptions {
        chunk_size: 4096,
        compressor: Compressor::Zstd,
        digester: Digester::Blake3,
        threads: 1,
        prefetch: vec!["/".into()],
        dedup_lower: true,
    };
    match convert(&layers, &store, &opts, None, &Progress::new()) {
        Ok(r) => {
            let info = read_bootstrap(&r.bootstrap).expect("the bootstrap reads back");
            assert_eq!(info.blobs.len(), r.blobs.len());
            for b in r.layers.iter().filter_map(|l| l.blob) {
                let file = std::fs::read(store.path_of(&b.0)).expect("the blob");
                assert_eq!(layerforge_core::digest::Digest::of(&file), b.0);
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text:?}");
            assert!(
                !matches!(&e, Error::Corrupt(m) if m.contains("invariant")),
                "{text}"
            );
            assert!(!text.contains("panicked"), "{text}");
            let blobs = std::fs::read_dir(dir.path().join("blobs"))
                .expect("blobs")
                .count();
            assert_eq!(blobs, 0, "a failed conversion left blobs");
        }
    }
    let scratch = std::fs::read_dir(dir.path().join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(scratch, 0, "scratch files left behind");
});
