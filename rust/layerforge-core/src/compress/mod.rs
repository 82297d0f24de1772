//! Layer compressors. Each takes the tar stream chunk by chunk and hands compressed
//! chunks to a [`ChunkSink`]. Output depends only on the input and the settings, never on
//! the number of threads, so blob digests are the same on every machine.

mod gzip;
mod zstd;

pub use self::gzip::{GzipFraming, ParallelGzip};
pub use self::zstd::ZstdStream;

use crate::chunk::ChunkSink;
use crate::error::{Error, Result};

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Deflate level 1..=9, gzip framing.
    Gzip {
        level: u32,
    },
    /// zstd level 1..=19.
    Zstd {
        level: i32,
    },
}

impl Compression {
    /// Parse a name and optional level (`None` = the format's default: gzip 6, zstd 3).
    pub fn parse(name: &str, level: Option<i32>) -> Result<Self> {
        match name {
            "none" | "uncompressed" => match level {
                None => Ok(Compression::None),
                Some(l) => Err(Error::input(format!(
                    "compression level {l} given for an uncompressed layer"
                ))),
            },
            "gzip" => {
                let l = level.unwrap_or(6);
                if !(1..=9).contains(&l) {
                    return Err(Error::input(format!("gzip level must be 1..9, got {l}")));
                }
                Ok(Compression::Gzip { level: l as u32 })
            }
            "zstd" => {
                let l = level.unwrap_or(3);
                if !(1..=19).contains(&l) {
                    return Err(Error::input(format!("zstd level must be 1..19, got {l}")));
                }
                Ok(Compression::Zstd { level: l })
            }
            other => Err(Error::input(format!(
                "unknown compression '{other}' (expected gzip, zstd or none)"
            ))),
        }
    }
}

/// A running compressor for one stream.
pub enum Encoder<'p, S: ChunkSink> {
    Identity(S),
    Gzip(ParallelGzip<'p, S>),
    Zstd(ZstdStream<S>),
}

impl<'p, S: ChunkSink> Encoder<'p, S> {
    /// `threads` bounds the compression parallelism of this stream (gzip jobs run on `pool`);
    /// `framing` is how gzip blocks are framed (one member each for layers, one stream for initrds).
    pub fn new(
        c: Compression,
        framing: GzipFraming,
        sink: S,
        pool: &'p rayon::ThreadPool,
        threads: usize,
    ) -> Result<Self> {
        Ok(match c {
            Compression::None => Encoder::Identity(sink),
            Compression::Gzip { level } => {
                Encoder::Gzip(ParallelGzip::new(sink, level, framing, pool, threads))
            }
            Compression::Zstd { level } => Encoder::Zstd(ZstdStream::new(sink, level, threads)?),
        })
    }

    pub fn push(&mut self, chunk: Vec<u8>) -> Result<()> {
        match self {
            Encoder::Identity(s) => s.deliver(chunk),
            Encoder::Gzip(g) => g.push(chunk),
            Encoder::Zstd(z) => z.push(&chunk),
        }
    }

    /// Flush everything and give the sink back.
    pub fn finish(self) -> Result<S> {
        match self {
            Encoder::Identity(s) => Ok(s),
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}
