//! The gzip/zstd/plain front that reads layer blobs back (decompress.rs), on arbitrary
//! blobs: an error that leaves no file behind, or digests that are the blob's and the
//! written tar's; never a panic.
#![no_main]

use layerforge_core::decompress::decompress_file;
use layerforge_core::digest::Digest;
use layerforge_core::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("scratch directory");
    let src = dir.path().join("blob");
    std::fs::write(&src, data).expect("write the blob");
    // Small blobs are also written out (bigger ones could expand to a lot of disk).
    let dest = (data.len() < 512).then(|| dir.path().join("out.tar"));
    match decompress_file(&src, dest.as_deref(), &Progress::new()) {
        Ok(d) => {
            assert_eq!(d.digest, Digest::of(data));
            assert_eq!(d.size, data.len() as u64);
            if let Some(dest) = &dest {
                let tar = std::fs::read(dest).expect("the written tar");
                assert_eq!(d.diff_id, Digest::of(&tar));
                assert_eq!(d.uncompressed_size, tar.len() as u64);
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text:?}");
            let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
            assert_eq!(left.len(), 1, "a failed decompression left files behind");
        }
    }
});
