//! Building layer blobs in one pass.
//!
//! Per layer, three stages connected by bounded channels of fixed-size chunks:
//!
//! ```text
//!  tar writer ──chunks──▶ diff_id sha256 + compressor ──chunks──▶ blob sha256 + temp file
//!  (reads files)           (gzip blocks fan out to the pool)       (renamed to its digest)
//! ```
//!
//! Memory is bounded by the channel depths whatever the layer size, every byte is read once,
//! and the blob appears under `blobs/sha256/<digest>` only when complete. Layers of one
//! image run concurrently; gzip blocks of every layer share one worker pool.

use std::fs::File;
use std::path::Path;
use std::thread;

use crossbeam_channel::bounded;
use rayon::prelude::*;

use crate::blob::BlobStore;
use crate::chunk::{ChunkWriter, DEFAULT_CHUNK_SIZE};
use crate::compress::{Compression, Encoder, GzipFraming};
use crate::concurrent::{run_indexed, worker_pool};
use crate::cpio::write_cpio;
use crate::digest::{Digest, Hasher};
use crate::elf::MachineCheck;
use crate::entry::{total_content_size, Entry, LayerSpec};
use crate::error::{most_relevant, Error, IoContext, Result};
use crate::progress::Progress;
use crate::tar::write_tar;

/// Chunks queued between stages; with 1 MiB chunks this bounds a layer's buffers to ~16 MiB
/// (plus the compressor's own working set).
const TAR_QUEUE: usize = 4;
const OUT_QUEUE: usize = 8;

/// How a layer's entries are serialised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// POSIX tar (OCI layers).
    #[default]
    Tar,
    /// newc cpio (initramfs / unikernel initrds).
    Cpio,
}

impl ArchiveFormat {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "tar" => Ok(ArchiveFormat::Tar),
            "cpio" | "newc" => Ok(ArchiveFormat::Cpio),
            other => Err(Error::input(format!(
                "unknown archive format '{other}' (expected tar or cpio)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub format: ArchiveFormat,
    pub compression: Compression,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Chunk size; also the gzip block size, so it is part of the output's identity.
    pub chunk_size: usize,
    /// Refuse executables built for another machine than this one (tar layers only).
    pub machine: Option<MachineCheck>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            format: ArchiveFormat::Tar,
            compression: Compression::Gzip { level: 6 },
            threads: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            machine: None,
        }
    }
}

/// What a built layer is, in OCI terms (for a cpio, `diff_id` is the digest of the plain archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerResult {
    /// sha256 of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the blob as stored (manifest layer digest).
    pub digest: Digest,
    /// Size of the stored blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Whether this build added the blob to the store (false if it was already there).
    pub created: bool,
}

/// Build one blob per spec into `store`, concurrently, results in spec order.
///
/// Inputs are fully resolved (walked, checked) before any blob is written, so bad input
/// fails fast with nothing written. If any layer fails, blobs this call added are removed.
pub fn build_layers(
    specs: &[LayerSpec],
    store: &BlobStore,
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<Vec<LayerResult>> {
    build_layers_into(specs, &vec![store; specs.len()], opts, progress)
}

/// [`build_layers`] with a store per spec: `specs[i]`'s blob goes into `stores[i]` (a batch
/// of layers, each into a layer directory of its own, built concurrently as one image's are).
/// If any layer fails, blobs this call added are removed from their stores.
pub fn build_layers_into(
    specs: &[LayerSpec],
    stores: &[&BlobStore],
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<Vec<LayerResult>> {
    if stores.len() != specs.len() {
        return Err(Error::Input(format!(
            "{} layers were given {} blob stores",
            specs.len(),
            stores.len()
        )));
    }
    let (threads, pool) = worker_pool(opts.threads, "layerforge")?;

    let entries: Vec<Vec<Entry>> = pool.install(|| {
        specs
            .par_iter()
            .map(LayerSpec::collect)
            .collect::<Result<_>>()
    })?;
    progress.add_total(entries.iter().map(|e| total_content_size(e)).sum());

    let (ok, failure) = run_indexed(entries.len(), threads, progress, |i, _| {
        build_layer(&entries[i], stores[i], opts, &pool, threads, progress).map(|l| (i, l))
    });
    if let Some(e) = failure {
        for (i, l) in ok.iter().filter(|(_, l)| l.created) {
            let _ = stores[*i].remove(&l.digest);
        }
        return Err(e);
    }
    Ok(ok.into_iter().map(|(_, l)| l).collect())
}

/// Build one layer blob from a sorted entry list.
pub fn build_layer(
    entries: &[Entry],
    store: &BlobStore,
    opts: &BuildOptions,
    pool: &rayon::ThreadPool,
    threads: usize,
    progress: &Progress,
) -> Result<LayerResult> {
    let mut blob = store.begin()?;
    let blob_path = blob.path().to_path_buf();
    let s = stream_layer(
        entries,
        blob.file()?,
        &blob_path,
        opts,
        pool,
        threads,
        progress,
    )?;
    let created = blob.commit(&s.digest)?;
    Ok(LayerResult {
        diff_id: s.diff_id,
        digest: s.digest,
        size: s.size,
        uncompressed_size: s.uncompressed_size,
        created,
    })
}

/// What [`stream_layer`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub diff_id: Digest,
    /// sha256 of the bytes written (the diff_id when uncompressed).
    pub digest: Digest,
    /// Bytes written.
    pub size: u64,
    pub uncompressed_size: u64,
}

/// Write one layer of a sorted entry list into `file` from its current position, in one
/// pass (tar writer, hashing and compressor, writer); `path` names the file in errors.
pub fn stream_layer(
    entries: &[Entry],
    file: &mut File,
    path: &Path,
    opts: &BuildOptions,
    pool: &rayon::ThreadPool,
    threads: usize,
    progress: &Progress,
) -> Result<Streamed> {
    let compressed = opts.compression != Compression::None;
    let (tar_tx, tar_rx) = bounded::<Vec<u8>>(TAR_QUEUE);
    let (out_tx, out_rx) = bounded::<Vec<u8>>(OUT_QUEUE);

    let (tar_r, coord_r, write_r) = thread::scope(|s| {
        let tar = s.spawn(move || -> Result<u64> {
            let mut w = ChunkWriter::new(tar_tx, opts.chunk_size);
            match opts.format {
                ArchiveFormat::Tar => write_tar(entries, &mut w, progress, opts.machine.as_ref())?,
                ArchiveFormat::Cpio => write_cpio(entries, &mut w, progress)?,
            }
            Ok(w.finish()?.1)
        });
        let writer = s.spawn(move || -> Result<(Option<Digest>, u64)> {
            use std::io::Write;
            let mut h = compressed.then(Hasher::new);
            let mut size = 0u64;
            for chunk in out_rx {
                if let Some(h) = h.as_mut() {
                    h.update(&chunk);
                }
                file.write_all(&chunk)
                    .ctx(|| format!("cannot write '{}'", path.display()))?;
                size += chunk.len() as u64;
            }
            Ok((h.map(Hasher::finish), size))
        });
        let coord = (|| -> Result<Digest> {
            let mut diff = Hasher::new();
            let framing = match opts.format {
                ArchiveFormat::Tar => GzipFraming::Members,
                ArchiveFormat::Cpio => GzipFraming::SingleStream,
            };
            let mut enc = Encoder::new(opts.compression, framing, out_tx, pool, threads)?;
            for chunk in tar_rx {
                diff.update(&chunk);
                enc.push(chunk)?;
            }
            drop(enc.finish()?);
            Ok(diff.finish())
        })();
        (joined(tar.join()), coord, joined(writer.join()))
    });

    let (uncompressed_size, diff_id, (blob_digest, size)) = match (tar_r, coord_r, write_r) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => {
            let worst = [a.err(), b.err(), c.err()]
                .into_iter()
                .flatten()
                .fold(Error::StageStopped, most_relevant);
            return Err(worst);
        }
    };
    Ok(Streamed {
        diff_id,
        digest: blob_digest.unwrap_or(diff_id),
        size,
        uncompressed_size,
    })
}

fn joined<T>(r: thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(Error::Corrupt("layer stage panicked".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryOptions;
    use std::fs;
    use std::io::Read;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for i in 0..50 {
            let d = t.path().join(format!("d{}", i % 7));
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join(format!("f{i}")),
                format!("content {i} ").repeat(i * 300),
            )
            .unwrap();
        }
        t
    }

    fn build(
        src: &std::path::Path,
        c: Compression,
        threads: usize,
    ) -> (tempfile::TempDir, LayerResult) {
        let out = tempfile::tempdir().unwrap();
        let store =
            BlobStore::open(out.path().join("blobs/sha256"), out.path().join("tmp")).unwrap();
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(src, "/");
        let opts = BuildOptions {
            format: ArchiveFormat::Tar,
            compression: c,
            threads,
            chunk_size: 64 * 1024,
            machine: None,
        };
        let r = build_layers(&[spec], &store, &opts, &Progress::new()).unwrap();
        (out, r.into_iter().next().unwrap())
    }

    fn blob(out: &tempfile::TempDir, d: &Digest) -> Vec<u8> {
        fs::read(out.path().join("blobs/sha256").join(d.hex())).unwrap()
    }

    #[test]
    fn digests_match_content_for_each_compression() {
        let src = tree();
        let (o0, plain) = build(src.path(), Compression::None, 2);
        let tar = blob(&o0, &plain.digest);
        assert_eq!(plain.diff_id, plain.digest);
        assert_eq!(Digest::of(&tar), plain.digest);
        assert_eq!(tar.len() as u64, plain.size);

        let (o1, gz) = build(src.path(), Compression::Gzip { level: 6 }, 2);
        let gzb = blob(&o1, &gz.digest);
        assert_eq!(Digest::of(&gzb), gz.digest);
        assert_eq!(gz.diff_id, plain.diff_id);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gzb[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);

        let (o2, zs) = build(src.path(), Compression::Zstd { level: 3 }, 2);
        let zb = blob(&o2, &zs.digest);
        assert_eq!(Digest::of(&zb), zs.digest);
        assert_eq!(zstd::stream::decode_all(&zb[..]).unwrap(), tar);
        assert_eq!(fs::read_dir(o2.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn same_output_for_any_thread_count() {
        let src = tree();
        for c in [
            Compression::Gzip { level: 6 },
            Compression::Zstd { level: 3 },
        ] {
            let (_a, one) = build(src.path(), c, 1);
            let (_b, three) = build(src.path(), c, 3);
            assert_eq!(one, three, "{c:?}");
        }
    }

    #[test]
    fn failure_rolls_back_and_leaves_no_scratch() {
        let src = tree();
        let out = tempfile::tempdir().unwrap();
        let store =
            BlobStore::open(out.path().join("blobs/sha256"), out.path().join("tmp")).unwrap();
        let mut good = LayerSpec::new(EntryOptions::default());
        good.add_tree(src.path(), "/");
        let mut bad = LayerSpec::new(EntryOptions::default());
        bad.add_path("/nonexistent/file", "x");
        let err = build_layers(
            &[good, bad],
            &store,
            &BuildOptions::default(),
            &Progress::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/file"), "{err}");
        assert_eq!(
            fs::read_dir(out.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(fs::read_dir(out.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn foreign_executables_are_refused_while_read() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(16, 0);
        elf.extend(3u16.to_le_bytes()); // ET_DYN
        elf.extend(0x3Eu16.to_le_bytes()); // x86-64
        elf.resize(4096, 0);
        fs::create_dir(src.path().join("bin")).unwrap();
        let exe = src.path().join("bin/tool");
        fs::write(&exe, &elf).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o555)).unwrap();
        // The same bytes without an execute bit are data, not an executable of the image.
        fs::write(src.path().join("bin/data"), &elf).unwrap();
        let out = tempfile::tempdir().unwrap();
        let store =
            BlobStore::open(out.path().join("blobs/sha256"), out.path().join("tmp")).unwrap();
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(src.path(), "/nix/store/x-tool");
        let opts = |arch: &str| BuildOptions {
            machine: Some(MachineCheck::for_arch(arch).unwrap()),
            ..BuildOptions::default()
        };
        let p = Progress::new;
        let err = build_layers(&[spec.clone()], &store, &opts("arm64"), &p()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/nix/store/x-tool/bin/tool' is an ELF executable for amd64, but the image's architecture is arm64"
        );
        assert_eq!(
            fs::read_dir(out.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
        let checked = build_layers(&[spec.clone()], &store, &opts("amd64"), &p()).unwrap();
        let unchecked = build_layers(&[spec], &store, &BuildOptions::default(), &p()).unwrap();
        assert!(checked[0].created && !unchecked[0].created);
        assert_eq!(checked[0].digest, unchecked[0].digest);
    }

    #[test]
    fn cancellation_stops_the_build() {
        let src = tree();
        let out = tempfile::tempdir().unwrap();
        let store = BlobStore::open(out.path().join("b"), out.path().join("tmp")).unwrap();
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(src.path(), "/");
        let p = Progress::new();
        p.cancel();
        let err = build_layers(&[spec], &store, &BuildOptions::default(), &p).unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err}");
        assert_eq!(fs::read_dir(out.path().join("b")).unwrap().count(), 0);
    }
}
