//! Reading layer blobs back: decompress (gzip, zstd or none, detected from the bytes),
//! hashing both sides, optionally writing the uncompressed tar atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;

const BUF: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zstd,
    Plain,
}

impl Format {
    /// Recognise a blob by its first bytes.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(&[0x1f, 0x8b]) {
            Format::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Format::Zstd
        } else {
            Format::Plain
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decompressed {
    pub format: Format,
    /// sha256 of the blob as stored.
    pub digest: Digest,
    /// sha256 of the decompressed stream (a layer's diff_id).
    pub diff_id: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
}

/// Hashes (and counts as progress) the compressed bytes as the decoder pulls them.
pub(crate) struct HashingReader<'p, R> {
    inner: R,
    hasher: Hasher,
    progress: &'p Progress,
}

impl<'p, R> HashingReader<'p, R> {
    pub(crate) fn new(inner: R, progress: &'p Progress) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
            progress,
        }
    }

    /// sha256 of every byte read.
    pub(crate) fn digest(self) -> Digest {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Decompress `src` into `dest` (atomically, via `dest` + ".tmp-<pid>"), or only hash it
/// when `dest` is `None`.
pub fn decompress_file(
    src: &Path,
    dest: Option<&Path>,
    progress: &Progress,
) -> Result<Decompressed> {
    let f = File::open(src).map_err(|e| Error::io_path("cannot read", src, e))?;
    let size = f
        .metadata()
        .map_err(|e| Error::io_path("cannot read", src, e))?
        .len();
    progress.add_total(size);
    let format = sniff_file(&f).map_err(|e| Error::io_path("cannot read", src, e))?;
    let reader = HashingReader::new(f, progress);

    let mut out: Option<(PathBuf, File)> = match dest {
        Some(d) => {
            let tmp = temp_name(d);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| Error::io_path("cannot create", &tmp, e))?;
            Some((tmp, file))
        }
        None => None,
    };
    let result = (|| -> Result<(Digest, Digest, u64)> {
        let corrupt = |e: io::Error| {
            Error::Corrupt(format!(
                "'{}' is not a valid {format:?} stream: {e}",
                src.display()
            ))
        };
        let mut diff = Hasher::new();
        let mut buf = vec![0u8; BUF];
        let mut copy = |r: &mut dyn Read, out: &mut Option<(PathBuf, File)>| -> Result<()> {
            loop {
                progress.check()?;
                let n = r.read(&mut buf).map_err(corrupt)?;
                if n == 0 {
                    return Ok(());
                }
                diff.update(&buf[..n]);
                if let Some((p, f)) = out.as_mut() {
                    f.write_all(&buf[..n])
                        .ctx(|| format!("cannot write '{}'", p.display()))?;
                }
            }
        };
        let mut reader = match format {
            Format::Gzip => {
                let mut d =
                    flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, reader));
                copy(&mut d, &mut out)?;
                d.into_inner()
            }
            Format::Zstd => {
                let mut d =
                    zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(BUF, reader))
                        .map_err(corrupt)?;
                copy(&mut d, &mut out)?;
                d.finish()
            }
            Format::Plain => {
                let mut r = BufReader::with_capacity(BUF, reader);
                copy(&mut r, &mut out)?;
                r
            }
        };
        // Bytes after the compressed stream(s) would escape the diff_id: refuse them.
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .ctx(|| format!("cannot read '{}'", src.display()))?;
        if !rest.is_empty() {
            return Err(Error::Corrupt(format!(
                "'{}' has {} bytes of trailing data after the {format:?} stream",
                src.display(),
                rest.len()
            )));
        }
        let reader = reader.into_inner();
        let usize_ = diff.len();
        Ok((reader.digest(), diff.finish(), usize_))
    })();

    match result {
        Ok((digest, diff_id, uncompressed_size)) => {
            if let (Some((tmp, file)), Some(d)) = (out.take(), dest) {
                drop(file);
                fs::rename(&tmp, d).map_err(|e| Error::io_path("cannot create", d, e))?;
            }
            Ok(Decompressed {
                format,
                digest,
                diff_id,
                size,
                uncompressed_size,
            })
        }
        Err(e) => {
            if let Some((tmp, file)) = out.take() {
                drop(file);
                let _ = fs::remove_file(tmp);
            }
            Err(e)
        }
    }
}

/// The format of the blob in `f`, from its first bytes (read without moving the file position).
pub(crate) fn sniff_file(f: &File) -> io::Result<Format> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        let k = f.read_at(&mut head[n..], n as u64)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(Format::sniff(&head[..n]))
}

fn temp_name(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_zstd_plain_round_trip_with_digests() {
        let t = tempfile::tempdir().unwrap();
        let data = b"hello layer ".repeat(10000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&data[..], 3).unwrap();
        for (name, blob, fmt) in [
            ("g", gz, Format::Gzip),
            ("z", zs, Format::Zstd),
            ("p", data.clone(), Format::Plain),
        ] {
            let src = t.path().join(name);
            fs::write(&src, &blob).unwrap();
            let dest = t.path().join(format!("{name}.tar"));
            let d = decompress_file(&src, Some(&dest), &Progress::new()).unwrap();
            assert_eq!(d.format, fmt);
            assert_eq!(d.digest, Digest::of(&blob));
            assert_eq!(d.diff_id, Digest::of(&data));
            assert_eq!(fs::read(&dest).unwrap(), data);
        }
    }

    #[test]
    fn corrupt_gzip_is_an_error_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("bad");
        fs::write(
            &src,
            [
                0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0xde, 0xad, 0xbe, 0xef,
            ],
        )
        .unwrap();
        let dest = t.path().join("out.tar");
        let err = decompress_file(&src, Some(&dest), &Progress::new()).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
