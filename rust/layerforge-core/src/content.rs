//! Streaming a regular file's content into an archive: exactly the size its header promised.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::chunk::{ChunkSink, ChunkWriter};
use crate::elf::MachineCheck;
use crate::entry::{Content, Entry};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// What a file's content is checked against while it is read: the entry it belongs to (its
/// image path and mode) and the machine its executables must be built for.
#[derive(Clone, Copy)]
pub struct ContentCheck<'a> {
    pub entry: &'a Entry,
    pub machine: &'a MachineCheck,
}

/// Write `size` bytes of `content` (read from disk as it goes); `progress` advances by them.
pub fn write_content<S: ChunkSink>(
    content: &Content,
    size: u64,
    out: &mut ChunkWriter<S>,
    progress: &Progress,
    check: Option<ContentCheck<'_>>,
) -> Result<()> {
    match content {
        Content::Bytes(b) => {
            if let Some(c) = check {
                if c.entry.mode & 0o111 != 0 {
                    c.machine.check_header(b, &c.entry.path)?;
                }
            }
            out.write(b)?;
            progress.advance(b.len() as u64);
            Ok(())
        }
        Content::Disk(p) => copy_file(p, size, out, progress, check),
    }
}

/// Copy exactly `size` bytes of `path`; a file that changed size since it was listed is an
/// error (the header already promised `size`).
fn copy_file<S: ChunkSink>(
    path: &Path,
    size: u64,
    out: &mut ChunkWriter<S>,
    progress: &Progress,
    check: Option<ContentCheck<'_>>,
) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io_path("cannot read", path, e))?;
    let fd = f.as_raw_fd();
    if let Some(c) = check {
        c.machine.check_fd(fd, &c.entry.path, c.entry.mode, size)?;
    }
    let mut left = size;
    while left > 0 {
        let n = out
            .read_from_fd(fd, usize::try_from(left).unwrap_or(usize::MAX))
            .map_err(|e| relabel(e, path))?;
        if n == 0 {
            return Err(Error::input(format!(
                "file '{}' shrank while being archived (expected {size} bytes, got {})",
                path.display(),
                size - left
            )));
        }
        left -= n as u64;
        progress.advance(n as u64);
        progress.check()?;
    }
    let mut probe = [0u8; 1];
    // SAFETY: reading one byte into a local buffer.
    let extra = unsafe { libc::read(fd, probe.as_mut_ptr().cast(), 1) };
    if extra > 0 {
        return Err(Error::input(format!(
            "file '{}' grew while being archived (expected {size} bytes)",
            path.display()
        )));
    }
    Ok(())
}

fn relabel(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { source, .. } => Error::io_path("cannot read", path, source),
        other => other,
    }
}
