//! A docker-archive's layer members written in one pass.
//!
//! Each layer is either built from its entries straight into the archive (tar writer, sha256,
//! the archive file: no blob in between) or copied from a file that already holds it
//! ([`crate::layer_copy`]: in-kernel, then read back and verified). Layers become the members
//! `<diff_id hex>/` and `<diff_id hex>/layer.tar`, in the order given; a layer whose diff_id
//! is already in the archive is written once. A built layer's headers are written after it,
//! once its diff_id is known, into the blocks reserved in front of it: its tar's size is
//! known from its entries before any file is read, so the reservation is exact.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::compress::Compression;
use crate::concurrent::worker_pool;
use crate::digest::Digest;
use crate::entry::{total_content_size, Content, Entry, Kind, LayerSpec};
use crate::error::{Error, IoContext, Result};
use crate::layer::{stream_layer, ArchiveFormat, BuildOptions};
use crate::layer_copy::{copy_verified, LayerCopy};
use crate::progress::Progress;
use crate::tar::{encode_header, tar_size, BLOCK_SIZE};

/// One layer of the archive.
#[derive(Debug, Clone)]
pub enum ArchiveLayer {
    /// Built from a spec into the archive.
    Build(LayerSpec),
    /// Copied from a file holding the layer's tar (its `offset` is ignored: it goes next).
    File(LayerCopy),
}

/// A layer as it is in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub diff_id: Digest,
    /// Size of the layer's tar.
    pub size: u64,
    /// False when the same diff_id was already in the archive (no second copy was written).
    pub written: bool,
}

/// Write `layers` into the archive `dest` (an existing regular file, never followed through
/// a symlink) from byte `start` on; `known` are diff_ids already in it. Returns the members
/// and the offset after the last. Built layers are plain tars (`opts.compression` is
/// ignored). On an error `dest` holds a partial archive: the caller discards it.
pub fn write_layer_members(
    dest: &Path,
    start: u64,
    known: &[Digest],
    layers: &[ArchiveLayer],
    mtime: u64,
    opts: &BuildOptions,
    progress: &Progress,
) -> Result<(Vec<Member>, u64)> {
    let opts = BuildOptions {
        format: ArchiveFormat::Tar,
        compression: Compression::None,
        ..*opts
    };
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dest)
        .map_err(|e| Error::io_path("cannot open", dest, e))?;
    let (threads, pool) = worker_pool(opts.threads, "layerforge")?;
    let entries: Vec<Option<Vec<Entry>>> = pool.install(|| {
        layers
            .par_iter()
            .map(|l| match l {
                ArchiveLayer::Build(spec) => spec.collect().map(Some),
                ArchiveLayer::File(_) => Ok(None),
            })
            .collect::<Result<_>>()
    })?;
    progress.add_total(
        layers
            .iter()
            .zip(&entries)
            .map(|(l, e)| match (l, e) {
                (ArchiveLayer::File(f), _) => f.size,
                (_, Some(e)) => total_content_size(e),
                _ => 0,
            })
            .sum(),
    );
    let write_err = |e| Error::io_path("cannot write", dest, e);
    let mut seen: HashSet<Digest> = known.iter().copied().collect();
    let mut offset = start;
    let mut members = Vec::with_capacity(layers.len());
    for (layer, entries) in layers.iter().zip(&entries) {
        progress.check()?;
        match (layer, entries) {
            (ArchiveLayer::File(f), _) => {
                if !seen.insert(f.digest) {
                    members.push(Member {
                        diff_id: f.digest,
                        size: f.size,
                        written: false,
                    });
                    continue;
                }
                let hdr = member_headers(&f.digest, f.size, mtime)?;
                out.write_all_at(&hdr, offset).map_err(write_err)?;
                let job = LayerCopy {
                    offset: offset + hdr.len() as u64,
                    ..f.clone()
                };
                copy_verified(&out, dest, &job, progress, &|| progress.check())?;
                let end = job.offset + f.size;
                let pad = padding(end);
                out.write_all_at(&vec![0u8; pad as usize], end)
                    .map_err(write_err)?;
                offset = end + pad;
                members.push(Member {
                    diff_id: f.digest,
                    size: f.size,
                    written: true,
                });
            }
            (ArchiveLayer::Build(_), Some(entries)) => {
                let size = tar_size(entries)?;
                let reserved = member_headers(&Digest([0; 32]), size, mtime)?.len() as u64;
                let data = offset + reserved;
                out.seek(SeekFrom::Start(data))
                    .ctx(|| format!("cannot write '{}'", dest.display()))?;
                let s = stream_layer(entries, &mut out, dest, &opts, &pool, threads, progress)?;
                if s.size != size {
                    return Err(Error::Corrupt(format!(
                        "a layer of {} bytes was written where {size} were reserved",
                        s.size
                    )));
                }
                let written = seen.insert(s.diff_id);
                if written {
                    let hdr = member_headers(&s.diff_id, size, mtime)?;
                    out.write_all_at(&hdr, offset).map_err(write_err)?;
                    offset = data + size;
                } else {
                    out.set_len(offset).map_err(write_err)?;
                }
                members.push(Member {
                    diff_id: s.diff_id,
                    size,
                    written,
                });
            }
            (ArchiveLayer::Build(_), None) => {
                return Err(Error::Corrupt("a layer's entries went missing".into()))
            }
        }
    }
    sync_len(&out, offset, dest)?;
    Ok((members, offset))
}

/// A duplicate built last was cut off; nothing past `end` belongs to the archive.
fn sync_len(out: &File, end: u64, dest: &Path) -> Result<()> {
    let len = out
        .metadata()
        .map_err(|e| Error::io_path("cannot read", dest, e))?
        .len();
    if len > end {
        out.set_len(end)
            .map_err(|e| Error::io_path("cannot write", dest, e))?;
    }
    Ok(())
}

fn padding(n: u64) -> u64 {
    let block = BLOCK_SIZE as u64;
    (block - n % block) % block
}

/// The headers of `<hex>/` and `<hex>/layer.tar` (`size` bytes), owned by root, at `mtime`.
fn member_headers(diff_id: &Digest, size: u64, mtime: u64) -> Result<Vec<u8>> {
    let hex = diff_id.hex();
    let entry = |path: String, kind: Kind, mode: u32| Entry {
        path,
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime,
    };
    let mut out = Vec::with_capacity(2 * BLOCK_SIZE);
    encode_header(&entry(hex.clone(), Kind::Dir, 0o755), &mut out)?;
    let content = Content::Bytes(Arc::from(Vec::new()));
    let file = Kind::File { content, size };
    encode_header(&entry(format!("{hex}/layer.tar"), file, 0o644), &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobStore;
    use crate::entry::EntryOptions;
    use crate::layer::build_layers;
    use crate::tar::read::TarReader;
    use std::fs;
    use std::io::Read;

    fn spec(dir: &Path, n: usize) -> LayerSpec {
        let src = dir.join(format!("src{n}"));
        fs::create_dir_all(&src).unwrap();
        for i in 0..n {
            fs::write(
                src.join(format!("f{i}")),
                format!("{n}-{i} ").repeat(i * 900),
            )
            .unwrap();
        }
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(&src, "/");
        spec
    }

    fn plain() -> BuildOptions {
        BuildOptions {
            compression: Compression::None,
            ..BuildOptions::default()
        }
    }

    /// (name, data) of every member of a tar.
    fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut r = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(m) = r.next_member().unwrap() {
            let mut data = vec![0u8; m.size as usize];
            r.read_data_exact(&mut data).unwrap();
            out.push((String::from_utf8(m.path).unwrap(), data));
        }
        out
    }

    #[test]
    fn built_and_copied_layers_are_the_blobs_a_layout_would_hold() {
        let t = tempfile::tempdir().unwrap();
        let specs = [spec(t.path(), 3), spec(t.path(), 40), spec(t.path(), 3)];
        let store = BlobStore::open(t.path().join("b"), t.path().join("tmp")).unwrap();
        let blobs = build_layers(&specs, &store, &plain(), &Progress::new()).unwrap();
        let file = |i: usize| {
            ArchiveLayer::File(LayerCopy {
                src: store.path_of(&blobs[i].digest),
                offset: 0,
                size: blobs[i].size,
                digest: blobs[i].digest,
                label: format!("layer {i}"),
            })
        };
        // 0 built, 1 copied, 2 built (the same as 0: written once), 1 copied again.
        let layers = [
            ArchiveLayer::Build(specs[0].clone()),
            file(1),
            ArchiveLayer::Build(specs[2].clone()),
            file(1),
        ];
        let dest = t.path().join("a.tar");
        fs::write(&dest, b"").unwrap();
        let (got, end) =
            write_layer_members(&dest, 0, &[], &layers, 7, &plain(), &Progress::new()).unwrap();
        let written: Vec<_> = got.iter().map(|m| (m.diff_id, m.written)).collect();
        let d = |i: usize| blobs[i].diff_id;
        assert_eq!(
            written,
            [(d(0), true), (d(1), true), (d(0), false), (d(1), false)]
        );
        let mut bytes = fs::read(&dest).unwrap();
        assert_eq!(bytes.len() as u64, end);
        bytes.extend([0u8; 1024]);
        let found = members(&bytes);
        let names: Vec<_> = found.iter().map(|(n, _)| n.clone()).collect();
        let (h0, h1) = (d(0).hex(), d(1).hex());
        assert_eq!(
            names,
            [
                format!("{h0}/"),
                format!("{h0}/layer.tar"),
                format!("{h1}/"),
                format!("{h1}/layer.tar")
            ]
        );
        for (i, (_, data)) in [(0, &found[1]), (1, &found[3])] {
            let mut blob = Vec::new();
            File::open(store.path_of(&blobs[i].digest))
                .unwrap()
                .read_to_end(&mut blob)
                .unwrap();
            assert_eq!(data, &blob);
        }
        // Same inputs, same bytes; known diff_ids are not written again.
        let again = t.path().join("b.tar");
        fs::write(&again, b"").unwrap();
        write_layer_members(&again, 0, &[], &layers, 7, &plain(), &Progress::new()).unwrap();
        assert_eq!(fs::read(&again).unwrap(), fs::read(&dest).unwrap());
        let (rest, _) = write_layer_members(
            &again,
            end,
            &[d(0)],
            &layers[..1],
            7,
            &plain(),
            &Progress::new(),
        )
        .unwrap();
        assert!(!rest[0].written);
        assert_eq!(fs::metadata(&again).unwrap().len(), end);
    }

    #[test]
    fn a_bad_layer_file_is_an_error_naming_it() {
        let t = tempfile::tempdir().unwrap();
        let store = BlobStore::open(t.path().join("b"), t.path().join("tmp")).unwrap();
        let blob = build_layers(&[spec(t.path(), 4)], &store, &plain(), &Progress::new())
            .unwrap()
            .remove(0);
        let layer = ArchiveLayer::File(LayerCopy {
            src: store.path_of(&blob.digest),
            offset: 0,
            size: blob.size,
            digest: Digest([1; 32]),
            label: "base layer 1".into(),
        });
        let dest = t.path().join("a.tar");
        fs::write(&dest, b"").unwrap();
        let err = write_layer_members(&dest, 0, &[], &[layer], 7, &plain(), &Progress::new())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("base layer 1 does not match its digest"),
            "{err}"
        );
    }
}
