//! Copying layer tars that already exist as files into one archive (a docker-archive) at
//! offsets the caller reserved for them, concurrently.
//!
//! The kernel copies each layer (`copy_file_range`: no trip through user space, a clone where
//! the filesystem shares extents); the copy is then read back from the archive, where no
//! one but its writer can change it, and must hash to the layer's digest and walk as a tar
//! (every header valid, nothing but zero blocks after the end). A layer that fails either
//! check is an error naming it; the caller discards the archive.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::concurrent::{run_indexed, thread_count};
use crate::decompress::open_blob;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::tar::read::TarReader;

/// What a copy checks between steps: `Err` (cancelled, or another job failed) stops it.
pub(crate) type Stop<'a> = dyn Fn() -> Result<()> + Sync + 'a;

/// Bytes copied per `copy_file_range` call (cancellation is checked between calls).
const COPY_STEP: u64 = 64 << 20;
/// Read-back buffer for the digest and the tar walk.
const READ_BUF: usize = 1 << 20;

/// One layer to copy: the file holding it, where its bytes go in the archive, and what
/// they must be.
#[derive(Debug, Clone)]
pub struct LayerCopy {
    pub src: PathBuf,
    pub offset: u64,
    pub size: u64,
    pub digest: Digest,
    /// How errors name the layer (e.g. `'LAYOUT': layer 2 (sha256:...)`).
    pub label: String,
}

/// Copy every layer of `jobs` into the archive `dest` (an existing regular file, opened
/// here for reading and writing, never through a symlink) and verify each copy.
pub fn copy_layers(
    dest: &Path,
    jobs: &[LayerCopy],
    threads: usize,
    progress: &Progress,
) -> Result<()> {
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dest)
        .map_err(|e| Error::io_path("cannot open", dest, e))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = thread_count(threads, cores)?;
    progress.add_total(jobs.iter().map(|j| j.size).sum());
    let (_, failure) = run_indexed(jobs.len(), threads, progress, |i, stop| {
        copy_verified(&out, dest, &jobs[i], progress, &|| stop.check())
    });
    failure.map_or(Ok(()), Err)
}

/// One layer of [`copy_layers`] into `out` (the archive `dest`); `stop` says when to give up.
pub(crate) fn copy_verified(
    out: &File,
    dest: &Path,
    job: &LayerCopy,
    progress: &Progress,
    stop: &Stop<'_>,
) -> Result<()> {
    let src = open_blob(&job.src, &job.label)?;
    let len = src
        .metadata()
        .map_err(|e| {
            Error::io(
                format!("{}: cannot read '{}'", job.label, job.src.display()),
                e,
            )
        })?
        .len();
    if len != job.size {
        return Err(Error::Corrupt(format!(
            "{} is {len} bytes, its descriptor says {} ('{}')",
            job.label,
            job.size,
            job.src.display()
        )));
    }
    kernel_copy(&src, out, job, dest, progress, stop)?;
    verify_copy(out, job, dest, stop)
}

/// `job.size` bytes of `src` to `job.offset` of `out`, by `copy_file_range`, or by reads and
/// writes where the kernel cannot copy between the two files.
fn kernel_copy(
    src: &File,
    out: &File,
    job: &LayerCopy,
    dest: &Path,
    progress: &Progress,
    stop: &Stop<'_>,
) -> Result<()> {
    let shrank = || {
        Error::Corrupt(format!(
            "{} shrank while it was copied into the archive ('{}')",
            job.label,
            job.src.display()
        ))
    };
    let write_err = |e| Error::io_path("cannot write", dest, e);
    let mut done = 0u64;
    while done < job.size {
        stop()?;
        let step = (job.size - done).min(COPY_STEP) as usize;
        let mut off_in = done as libc::loff_t;
        let mut off_out = (job.offset + done) as libc::loff_t;
        // SAFETY: both descriptors are open for the call; the offsets are locals.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                out.as_raw_fd(),
                &mut off_out,
                step,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
                    return copy_by_reads(src, out, job, done, dest, progress, stop);
                }
                Some(libc::EINTR) => continue,
                _ => return Err(write_err(e)),
            }
        }
        if n == 0 {
            return Err(shrank());
        }
        done += n as u64;
        progress.advance(n as u64);
    }
    Ok(())
}

fn copy_by_reads(
    src: &File,
    out: &File,
    job: &LayerCopy,
    mut done: u64,
    dest: &Path,
    progress: &Progress,
    stop: &Stop<'_>,
) -> Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    while done < job.size {
        stop()?;
        let want = (job.size - done).min(READ_BUF as u64) as usize;
        let n = match src.read_at(&mut buf[..want], done) {
            Ok(0) => {
                return Err(Error::Corrupt(format!(
                    "{} shrank while it was copied into the archive ('{}')",
                    job.label,
                    job.src.display()
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("{}: cannot read '{}'", job.label, job.src.display()),
                    e,
                ))
            }
        };
        out.write_all_at(&buf[..n], job.offset + done)
            .map_err(|e| Error::io_path("cannot write", dest, e))?;
        done += n as u64;
        progress.advance(n as u64);
    }
    Ok(())
}

/// The copied bytes, read back from the archive: a tar whose every header is valid, with
/// only zero blocks after its end, hashing to the layer's digest.
fn verify_copy(out: &File, job: &LayerCopy, dest: &Path, stop: &Stop<'_>) -> Result<()> {
    let region = Region {
        file: out,
        pos: job.offset,
        end: job.offset + job.size,
        hasher: Hasher::new(),
        dest,
    };
    let not_tar =
        |m: String| Error::Corrupt(format!("{} is not a valid tar archive: {m}", job.label));
    let mut tar = TarReader::new(BufReader::with_capacity(READ_BUF, region));
    let mut members = 0u64;
    loop {
        match tar.next_member() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(Error::Corrupt(m)) => return Err(not_tar(m)),
            Err(e) => return Err(e),
        }
        members += 1;
        if members % 4096 == 0 {
            stop()?;
        }
    }
    let mut rest = tar.into_inner();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = rest
            .read(&mut buf)
            .map_err(|e| Error::io_path("cannot read", dest, e))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(not_tar("a damaged or truncated header".into()));
        }
    }
    let region = rest.into_inner();
    if region.hasher.len() != job.size {
        return Err(not_tar(format!(
            "{} of {} bytes read back",
            region.hasher.len(),
            job.size
        )));
    }
    if region.hasher.finish() != job.digest {
        return Err(Error::Corrupt(format!(
            "{} does not match its digest {} (corrupt layout)",
            job.label, job.digest
        )));
    }
    Ok(())
}

/// `[pos, end)` of a file, read with `pread` and hashed as it is read.
struct Region<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    hasher: Hasher,
    dest: &'a Path,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "'{}' ends before the layer copied into it",
                    self.dest.display()
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobStore;
    use crate::compress::Compression;
    use crate::entry::{EntryOptions, LayerSpec};
    use crate::layer::{build_layers, ArchiveFormat, BuildOptions};
    use std::fs;

    fn layer(dir: &Path, n: usize) -> (PathBuf, Digest, u64) {
        let src = dir.join(format!("src{n}"));
        fs::create_dir_all(&src).unwrap();
        for i in 0..n {
            fs::write(
                src.join(format!("f{i}")),
                format!("{n}-{i} ").repeat(i * 700),
            )
            .unwrap();
        }
        let store = BlobStore::open(dir.join("blobs"), dir.join("tmp")).unwrap();
        let mut spec = LayerSpec::new(EntryOptions::default());
        spec.add_tree(&src, "/");
        let opts = BuildOptions {
            format: ArchiveFormat::Tar,
            compression: Compression::None,
            ..BuildOptions::default()
        };
        let r = build_layers(&[spec], &store, &opts, &Progress::new()).unwrap();
        (store.path_of(&r[0].digest), r[0].digest, r[0].size)
    }

    fn jobs(layers: &[(PathBuf, Digest, u64)]) -> (Vec<LayerCopy>, u64) {
        let mut offset = 512;
        let mut out = Vec::new();
        for (i, (src, digest, size)) in layers.iter().enumerate() {
            out.push(LayerCopy {
                src: src.clone(),
                offset,
                size: *size,
                digest: *digest,
                label: format!("layer {i}"),
            });
            offset += size + 512;
        }
        (out, offset)
    }

    #[test]
    fn layers_land_at_their_offsets() {
        let t = tempfile::tempdir().unwrap();
        let layers: Vec<_> = [3, 20, 7].iter().map(|&n| layer(t.path(), n)).collect();
        let (jobs, end) = jobs(&layers);
        let dest = t.path().join("archive");
        fs::write(&dest, vec![0xAAu8; end as usize]).unwrap();
        copy_layers(&dest, &jobs, 2, &Progress::new()).unwrap();
        let got = fs::read(&dest).unwrap();
        for j in &jobs {
            let want = fs::read(&j.src).unwrap();
            assert_eq!(
                &got[j.offset as usize..(j.offset + j.size) as usize],
                &want[..]
            );
            assert!(got[(j.offset - 512) as usize..j.offset as usize]
                .iter()
                .all(|&b| b == 0xAA));
        }
    }

    #[test]
    fn damaged_layers_are_named() {
        let t = tempfile::tempdir().unwrap();
        let (src, digest, size) = layer(t.path(), 5);
        let good = fs::read(&src).unwrap();
        let cases: [(usize, &str); 2] = [
            (100, "layer 0 is not a valid tar archive: "),
            (good.len() - 1124, "layer 0 does not match its digest"),
        ];
        for (at, want) in cases {
            let mut bad = good.clone();
            bad[at] ^= 0x55;
            let copy = t.path().join("bad");
            fs::write(&copy, &bad).unwrap();
            let (jobs, end) = jobs(&[(copy, digest, size)]);
            let dest = t.path().join("archive");
            fs::write(&dest, vec![0u8; end as usize]).unwrap();
            let err = copy_layers(&dest, &jobs, 1, &Progress::new()).unwrap_err();
            assert!(err.to_string().starts_with(want), "{err}");
        }
        let mut longer = good.clone();
        longer.extend([0u8; 512]);
        let copy = t.path().join("long");
        fs::write(&copy, &longer).unwrap();
        let (jobs, end) = jobs(&[(copy, digest, size)]);
        let dest = t.path().join("archive");
        fs::write(&dest, vec![0u8; end as usize]).unwrap();
        let err = copy_layers(&dest, &jobs, 1, &Progress::new()).unwrap_err();
        assert!(err.to_string().contains("its descriptor says"), "{err}");
    }
}
