//! Fixed-size byte chunks: the unit that moves between pipeline stages.
//!
//! A [`ChunkWriter`] fills a buffer (reading file contents straight into it, without an
//! intermediate copy) and hands each full buffer to a [`ChunkSink`], typically the sending
//! end of a bounded channel, which is what keeps memory flat for any layer size.

use std::io;
use std::os::unix::io::RawFd;

use crossbeam_channel::Sender;

use crate::error::{Error, Result};

/// Default chunk size: large enough to amortise per-chunk work, small enough to pipeline.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;

/// Receives full chunks in order.
pub trait ChunkSink {
    fn deliver(&mut self, chunk: Vec<u8>) -> Result<()>;
}

impl ChunkSink for Sender<Vec<u8>> {
    fn deliver(&mut self, chunk: Vec<u8>) -> Result<()> {
        self.send(chunk).map_err(|_| Error::StageStopped)
    }
}

impl ChunkSink for Vec<Vec<u8>> {
    fn deliver(&mut self, chunk: Vec<u8>) -> Result<()> {
        self.push(chunk);
        Ok(())
    }
}

pub struct ChunkWriter<S: ChunkSink> {
    buf: Vec<u8>,
    cap: usize,
    sink: S,
    written: u64,
}

impl<S: ChunkSink> ChunkWriter<S> {
    pub fn new(sink: S, chunk_size: usize) -> Self {
        let cap = chunk_size.max(4096);
        ChunkWriter {
            buf: Vec::with_capacity(cap),
            cap,
            sink,
            written: 0,
        }
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn flush_full(&mut self) -> Result<()> {
        if self.buf.len() == self.cap {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.cap));
            self.sink.deliver(full)?;
        }
        Ok(())
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = (self.cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.written += n as u64;
            self.flush_full()?;
        }
        Ok(())
    }

    pub fn zeros(&mut self, mut n: usize) -> Result<()> {
        while n > 0 {
            let k = (self.cap - self.buf.len()).min(n);
            self.buf.resize(self.buf.len() + k, 0);
            n -= k;
            self.written += k as u64;
            self.flush_full()?;
        }
        Ok(())
    }

    /// One `read(2)` of at most `max` bytes from `fd` directly into the chunk buffer.
    /// Returns the byte count (0 at end of file). A full buffer is delivered first.
    pub fn read_from_fd(&mut self, fd: RawFd, max: usize) -> Result<usize> {
        self.flush_full()?;
        let len = self.buf.len();
        let want = (self.cap - len).min(max);
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            // SAFETY: the pointer addresses `want` bytes of this Vec's spare capacity, which
            // the kernel writes; only the bytes it reports written are exposed via set_len.
            let r = unsafe { libc::read(fd, self.buf.as_mut_ptr().add(len).cast(), want) };
            if r >= 0 {
                break r as usize;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(Error::io("read", err));
            }
        };
        // SAFETY: `n <= want` bytes after `len` were initialised by read(2).
        unsafe { self.buf.set_len(len + n) };
        self.written += n as u64;
        self.flush_full()?;
        Ok(n)
    }

    /// Deliver the last, partial chunk and return the sink and the total byte count.
    pub fn finish(mut self) -> Result<(S, u64)> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.sink.deliver(last)?;
        }
        Ok((self.sink, self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::io::AsRawFd;

    #[test]
    fn splits_into_fixed_chunks() {
        let mut w = ChunkWriter::new(Vec::new(), 4096);
        w.write(&[1u8; 5000]).unwrap();
        w.zeros(5000).unwrap();
        let (chunks, n) = w.finish().unwrap();
        assert_eq!(n, 10000);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4096, 4096, 1808]
        );
        let all: Vec<u8> = chunks.concat();
        assert!(all[..5000].iter().all(|&b| b == 1) && all[5000..].iter().all(|&b| b == 0));
    }

    #[test]
    fn reads_from_fd_into_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..10000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let f2 = std::fs::File::open(format!("/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        let mut w = ChunkWriter::new(Vec::new(), 4096);
        let mut total = 0;
        loop {
            let n = w.read_from_fd(f2.as_raw_fd(), usize::MAX).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, data.len());
        let (chunks, _) = w.finish().unwrap();
        assert_eq!(chunks.concat(), data);
    }
}
