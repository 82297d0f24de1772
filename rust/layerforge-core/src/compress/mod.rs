//! Layer compressors. Each takes the tar stream chunk by chunk and hands compressed
//! chunks to a [`ChunkSink`]. Output depends only on the input and the settings, never on
//! the number of threads, so blob digests are the same on every machine.

mod gzip;
mod zstd;

pub use self::gzip::{GzipFraming, ParallelGzip};
pub use self::zstd::ZstdStream;

use crate::chunk::ChunkSink;
use crate::error::{Error, Result};
use crate::rules::{RuleError, Setting};

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
    /// Parse a name and optional level (`None` = the format's default: gzip 6, zstd 3), as
    /// the table of option rules has them (`layer.compression`, `layer.level`).
    pub fn parse(name: &str, level: Option<i32>) -> Result<Self> {
        let in_range = |low: i32, high: i32, default: i32| {
            let l = level.unwrap_or(default);
            if (low..=high).contains(&l) {
                Ok(l)
            } else {
                Err(Error::Rule(RuleError::number(
                    Setting::CompressionLevel,
                    l,
                    format!("is not a {name} level from {low} to {high}"),
                )))
            }
        };
        match name {
            "none" => match level {
                None => Ok(Compression::None),
                Some(l) => Err(Error::Rule(RuleError::number(
                    Setting::CompressionLevel,
                    l,
                    "is given for 'none' layers, which take no level",
                ))),
            },
            "gzip" => Ok(Compression::Gzip {
                level: in_range(1, 9, 6)? as u32,
            }),
            "zstd" => Ok(Compression::Zstd {
                level: in_range(1, 19, 3)?,
            }),
            other => Err(Error::Rule(RuleError::text(
                Setting::Compression,
                other,
                "is not one of gzip, zstd, none",
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
