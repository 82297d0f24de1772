//! Reading a RAFS v6 bootstrap (a chunk dictionary, `--chunk-dict`) from arbitrary bytes:
//! an error or a table whose every chunk names a blob of the table, never a panic.
#![no_main]

use layerforge_core::rafs::algo::Digester;
use layerforge_core::rafs::convert::ChunkDict;
use layerforge_core::rafs::reader::read_bootstrap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = read_bootstrap(data) {
        assert!(info
            .chunks
            .iter()
            .all(|c| (c.blob as usize) < info.blobs.len()));
        for b in &info.blobs {
            let _ = b.id_str();
        }
    }
    for digester in [Digester::Blake3, Digester::Sha256] {
        let _ = ChunkDict::from_bootstrap(data, 1 << 20, digester);
    }
});
