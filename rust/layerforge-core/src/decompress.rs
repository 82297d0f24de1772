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

/// What a blob is expected to be, from the descriptor naming it. Reads stop one byte past
/// `size`, so a blob longer than its descriptor is an error, never read to its end.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// sha256 the blob must have.
    pub digest: Option<Digest>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// How errors name the blob ("layer 2 (sha256:...)"); default: its path.
    pub label: Option<String>,
}

impl Expected {
    fn name(&self, src: &Path) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("'{}'", src.display()))
    }
}

/// Open a blob for reading: only a regular file, never through a symlink at its last
/// component, and without blocking (a FIFO or a device is refused, not waited on).
pub fn open_blob(src: &Path, label: &str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(src)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::input(format!(
                    "{label}: '{}' is a symlink, not a regular file",
                    src.display()
                ))
            } else {
                Error::io(format!("{label}: cannot read '{}'", src.display()), e)
            }
        })?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("{label}: cannot read '{}'", src.display()), e))?;
    if !meta.is_file() {
        return Err(Error::input(format!(
            "{label}: '{}' is not a regular file",
            src.display()
        )));
    }
    Ok(f)
}

/// Decompress `src` into `dest` (atomically, via `dest` + ".tmp-<pid>"), or only hash it
/// when `dest` is `None`.
pub fn decompress_file(
    src: &Path,
    dest: Option<&Path>,
    progress: &Progress,
) -> Result<Decompressed> {
    decompress_verified(src, dest, &Expected::default(), progress)
}

/// [`decompress_file`] checking the blob against `expect` while streaming: only a regular
/// file is read, at most `size` + 1 bytes, and a digest or size mismatch is an error naming
/// the blob (nothing is left at `dest`).
pub fn decompress_verified(
    src: &Path,
    dest: Option<&Path>,
    expect: &Expected,
    progress: &Progress,
) -> Result<Decompressed> {
    let name = expect.name(src);
    let f = open_blob(src, &name)?;
    let size = f
        .metadata()
        .map_err(|e| Error::io_path("cannot read", src, e))?
        .len();
    progress.add_total(expect.size.map_or(size, |s| s.min(size)));
    let format = sniff_file(&f).map_err(|e| Error::io_path("cannot read", src, e))?;
    let reader = HashingReader::new(SizeLimit::new(f, expect.size), progress);

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
        let corrupt = |e: io::Error| match TooLong::of(&e) {
            Some(t) => Error::Corrupt(format!("{name} {t}")),
            None => Error::Corrupt(format!("{name} is not a valid {format:?} stream: {e}")),
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
        let rest = io::copy(&mut reader, &mut io::sink()).map_err(corrupt)?;
        if rest != 0 {
            return Err(Error::Corrupt(format!(
                "{name} has {rest} bytes of trailing data after the {format:?} stream"
            )));
        }
        let reader = reader.into_inner();
        let read = reader.inner.read;
        let usize_ = diff.len();
        let digest = reader.digest();
        if let Some(want) = expect.size {
            if read != want {
                return Err(Error::Corrupt(format!(
                    "{name} has only {read} bytes, its descriptor says {want}"
                )));
            }
        }
        if let Some(want) = &expect.digest {
            if &digest != want {
                return Err(Error::Corrupt(format!(
                    "{name} does not match its digest {want} (it is {digest})"
                )));
            }
        }
        Ok((digest, diff.finish(), usize_))
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

/// A reader that fails with [`TooLong`] as soon as more than `max` bytes come out of it
/// (it asks for at most one byte more than that), and counts what it read.
struct SizeLimit<R> {
    inner: R,
    max: Option<u64>,
    read: u64,
}

impl<R> SizeLimit<R> {
    fn new(inner: R, max: Option<u64>) -> Self {
        SizeLimit {
            inner,
            max,
            read: 0,
        }
    }
}

impl<R: Read> Read for SizeLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let buf = match self.max {
            Some(max) => {
                let room = max.saturating_sub(self.read).saturating_add(1);
                let n = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                &mut buf[..n]
            }
            None => buf,
        };
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        match self.max {
            Some(max) if self.read > max => Err(io::Error::other(TooLong(max))),
            _ => Ok(n),
        }
    }
}

/// The error a [`SizeLimit`] reader gives: the blob is longer than its descriptor says.
#[derive(Debug)]
struct TooLong(u64);

impl TooLong {
    fn of(e: &io::Error) -> Option<&TooLong> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<TooLong>())
    }
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "has more than {0} bytes, its descriptor says {0}",
            self.0
        )
    }
}

impl std::error::Error for TooLong {}

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

    fn expect(digest: Option<Digest>, size: Option<u64>) -> Expected {
        Expected {
            digest,
            size,
            label: Some("layer 1".into()),
        }
    }

    #[test]
    fn expected_digest_and_size_are_enforced_while_streaming() {
        let t = tempfile::tempdir().unwrap();
        let data = b"plain layer bytes".repeat(1000);
        let src = t.path().join("blob");
        fs::write(&src, &data).unwrap();
        let dest = t.path().join("out.tar");
        let good = expect(Some(Digest::of(&data)), Some(data.len() as u64));
        let d = decompress_verified(&src, Some(&dest), &good, &Progress::new()).unwrap();
        assert_eq!(d.digest, Digest::of(&data));
        fs::remove_file(&dest).unwrap();
        for (e, needle) in [
            (
                expect(Some(Digest::of(b"other")), None),
                "does not match its digest",
            ),
            (expect(None, Some(10)), "has more than 10 bytes"),
            (expect(None, Some(1 << 30)), "has only"),
        ] {
            let err = decompress_verified(&src, Some(&dest), &e, &Progress::new()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Corrupt(_)), "{msg}");
            assert!(msg.starts_with("layer 1 ") && msg.contains(needle), "{msg}");
            assert!(!dest.exists());
        }
    }

    #[test]
    fn a_longer_gzip_blob_is_cut_at_its_descriptor_size() {
        let t = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b"x".repeat(100_000)).unwrap();
        let gz = gz.finish().unwrap();
        let src = t.path().join("blob");
        fs::write(&src, &gz).unwrap();
        let e = expect(None, Some(gz.len() as u64 / 2));
        let err = decompress_verified(&src, None, &e, &Progress::new()).unwrap_err();
        assert!(err.to_string().contains("has more than"), "{err}");
    }

    #[test]
    fn only_regular_files_are_read() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let link = t.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (path, needle) in [
            (fifo.as_path(), "is not a regular file"),
            (Path::new("/dev/zero"), "is not a regular file"),
            (link.as_path(), "is a symlink"),
        ] {
            let err =
                decompress_verified(path, None, &expect(None, None), &Progress::new()).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
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
