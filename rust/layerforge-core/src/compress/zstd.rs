//! Streaming zstd through libzstd's multi-threaded compressor.
//!
//! libzstd cuts the input into jobs by size, not by worker count, so with at least one
//! worker the frame is the same for any number of workers (checked in the tests below).

use std::io::{self, Write};

use crate::chunk::{ChunkSink, ChunkWriter, DEFAULT_CHUNK_SIZE};
use crate::error::{Error, Result};

pub struct ZstdStream<S: ChunkSink> {
    enc: zstd::stream::write::Encoder<'static, SinkWrite<S>>,
}

impl<S: ChunkSink> ZstdStream<S> {
    pub fn new(sink: S, level: i32, threads: usize) -> Result<Self> {
        let w = SinkWrite {
            inner: ChunkWriter::new(sink, DEFAULT_CHUNK_SIZE),
            failed: None,
        };
        let mut enc = zstd::stream::write::Encoder::new(w, level).map_err(zstd_err)?;
        // Always multi-threaded (>= 1 worker): the single-threaded mode frames differently.
        enc.multithread(threads.max(1) as u32).map_err(zstd_err)?;
        enc.include_checksum(true).map_err(zstd_err)?;
        Ok(ZstdStream { enc })
    }

    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        self.enc.write_all(data).map_err(|e| self.sink_error(e))
    }

    pub fn finish(self) -> Result<S> {
        let w = self.enc.finish().map_err(zstd_err)?;
        if let Some(e) = w.failed {
            return Err(e);
        }
        Ok(w.inner.finish()?.0)
    }

    fn sink_error(&mut self, e: io::Error) -> Error {
        self.enc
            .get_mut()
            .failed
            .take()
            .unwrap_or_else(|| zstd_err(e))
    }
}

fn zstd_err(e: io::Error) -> Error {
    Error::io("zstd", e)
}

/// `io::Write` over a chunk sink, remembering the crate error behind an io failure.
struct SinkWrite<S: ChunkSink> {
    inner: ChunkWriter<S>,
    failed: Option<Error>,
}

impl<S: ChunkSink> Write for SinkWrite<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.failed = Some(e);
                Err(io::Error::other("output stage stopped"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x: u64 = 7;
        while v.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.extend_from_slice(format!("{:x} ", x >> 52).as_bytes());
        }
        v.truncate(n);
        v
    }

    fn compress(data: &[u8], threads: usize) -> Vec<u8> {
        let mut z = ZstdStream::new(Vec::new(), 3, threads).unwrap();
        for c in data.chunks(1 << 20) {
            z.push(c).unwrap();
        }
        z.finish().unwrap().concat()
    }

    #[test]
    fn output_independent_of_workers_and_round_trips() {
        let data = sample(40 << 20);
        let a = compress(&data, 1);
        let b = compress(&data, 2);
        let c = compress(&data, 4);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let back = zstd::stream::decode_all(&a[..]).unwrap();
        assert_eq!(back, data);
    }
}
