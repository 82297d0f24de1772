//! Parallel gzip. The input is cut into fixed blocks and the blocks are compressed on the
//! worker pool, in one of two framings ([`GzipFraming`]):
//!
//! - `Members` (layer blobs): each block is compressed whole by libdeflate into a gzip member
//!   of its own (header, deflate data, CRC-32 and size); the members, concatenated in order,
//!   are a multi-member gzip file (RFC 1952, 2.2) that gzip readers read as one stream (Go's
//!   `compress/gzip`, containerd, skopeo, Python, zlib, pigz). A 1 MiB block costs 18 bytes of
//!   framing and loses the 32 KiB of history a single stream would carry over (~0.3%), for
//!   libdeflate's whole-buffer compressor, about twice as fast as zlib's at the same size.
//! - `SingleStream` (initrds, which the kernel's initramfs decoder reads as one stream), in
//!   the manner of pigz: each block is deflated by zlib-rs with the previous 32 KiB as preset
//!   dictionary and ends on a byte boundary (sync flush), and the pieces form one
//!   single-member gzip stream.
//!
//! Block boundaries depend only on the block size and each piece only on its block (and, for
//! a single stream, the 32 KiB before it), so the output is identical whatever the number of
//! threads, on any machine (libdeflate's output depends on its version and level only; the
//! version is pinned by Cargo.lock).

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver};
use libz_rs_sys as z;

use crate::chunk::ChunkSink;
use crate::error::{Error, Result};

/// Deflate's window: the dictionary each block is primed with.
const WINDOW: usize = 32 * 1024;
/// Fixed gzip header: no name, mtime 0, no extra flags, OS "unknown" (as Go writes it).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final fixed-Huffman block, for an empty input.
const EMPTY_FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

type Job = Receiver<Result<Vec<u8>>>;

/// How the compressed blocks are framed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipFraming {
    /// One gzip member per block (libdeflate): layer blobs.
    Members,
    /// One gzip stream, blocks joined by sync flushes (zlib-rs): initrds.
    SingleStream,
}

pub struct ParallelGzip<'p, S: ChunkSink> {
    sink: S,
    level: u32,
    framing: GzipFraming,
    pool: &'p rayon::ThreadPool,
    /// The newest block, held back until we know whether it is the last.
    pending: Option<Arc<Vec<u8>>>,
    /// Last `WINDOW` bytes before `pending`.
    window: Vec<u8>,
    inflight: VecDeque<Job>,
    max_inflight: usize,
    crc: crc32fast::Hasher,
    isize: u64,
}

impl<'p, S: ChunkSink> ParallelGzip<'p, S> {
    pub fn new(
        sink: S,
        level: u32,
        framing: GzipFraming,
        pool: &'p rayon::ThreadPool,
        threads: usize,
    ) -> Self {
        ParallelGzip {
            sink,
            level,
            framing,
            pool,
            pending: None,
            window: Vec::with_capacity(WINDOW),
            inflight: VecDeque::new(),
            max_inflight: 2 * threads.max(1) + 1,
            crc: crc32fast::Hasher::new(),
            isize: 0,
        }
    }

    pub fn push(&mut self, block: Vec<u8>) -> Result<()> {
        if block.is_empty() {
            return Ok(());
        }
        if self.framing == GzipFraming::Members {
            self.isize += block.len() as u64;
            self.submit_member(block);
            return self.bound_inflight();
        }
        if self.isize == 0 {
            self.sink.deliver(HEADER.to_vec())?;
        }
        self.crc.update(&block);
        self.isize += block.len() as u64;
        if let Some(prev) = self.pending.take() {
            self.submit(prev, false);
        }
        self.pending = Some(Arc::new(block));
        self.bound_inflight()
    }

    fn bound_inflight(&mut self) -> Result<()> {
        while self.inflight.len() > self.max_inflight {
            self.collect_one()?;
        }
        Ok(())
    }

    fn submit_member(&mut self, block: Vec<u8>) {
        let (tx, rx) = bounded(1);
        let level = self.level;
        self.pool.spawn(move || {
            let _ = tx.send(gzip_member(level, &block));
        });
        self.inflight.push_back(rx);
    }

    fn submit(&mut self, block: Arc<Vec<u8>>, last: bool) {
        let dict: Arc<Vec<u8>> = Arc::new(self.window.clone());
        // Slide the window over this block.
        if block.len() >= WINDOW {
            self.window.clear();
            self.window
                .extend_from_slice(&block[block.len() - WINDOW..]);
        } else {
            self.window.extend_from_slice(&block);
            let excess = self.window.len().saturating_sub(WINDOW);
            self.window.drain(..excess);
        }
        let (tx, rx) = bounded(1);
        let level = self.level;
        self.pool.spawn(move || {
            let _ = tx.send(deflate_block(level, &dict, &block, last));
        });
        self.inflight.push_back(rx);
    }

    fn collect_one(&mut self) -> Result<()> {
        if let Some(rx) = self.inflight.pop_front() {
            let out = rx
                .recv()
                .map_err(|_| Error::Corrupt("gzip worker vanished".into()))??;
            self.sink.deliver(out)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<S> {
        if self.framing == GzipFraming::Members {
            if self.isize == 0 {
                self.submit_member(Vec::new());
            }
            while !self.inflight.is_empty() {
                self.collect_one()?;
            }
            return Ok(self.sink);
        }
        if self.isize == 0 {
            self.sink.deliver(HEADER.to_vec())?;
            self.sink.deliver(EMPTY_FINAL_BLOCK.to_vec())?;
        } else if let Some(last) = self.pending.take() {
            self.submit(last, true);
        }
        while !self.inflight.is_empty() {
            self.collect_one()?;
        }
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer.extend_from_slice(&(self.isize as u32).to_le_bytes());
        self.sink.deliver(trailer)?;
        Ok(self.sink)
    }
}

/// The libdeflate level for a layerforge gzip level: the default, 6, is libdeflate's 5,
/// which is about the size of `gzip -6` (-0.2% on text, -0.7% on binaries) at three times
/// pigz's bytes per CPU second (BENCHMARKS.md, "The gzip engine"). 4 and 5 are both
/// libdeflate's 4; 9 is libdeflate's 9 (its 10-12 are an order of magnitude slower).
fn libdeflate_level(level: u32) -> i32 {
    match level {
        0..=4 => level.max(1) as i32,
        5 => 4,
        6 => 5,
        7 => 6,
        8 => 7,
        _ => 9,
    }
}

thread_local! {
    /// Each worker's libdeflate compressor, with its level: allocating one per block would
    /// cost more than the tables' reuse (a libdeflate compressor keeps no state between calls,
    /// so reuse cannot change the output).
    static MEMBER_COMPRESSOR: std::cell::RefCell<Option<(i32, libdeflater::Compressor)>> =
        const { std::cell::RefCell::new(None) };
}

/// One gzip member holding `data`, compressed whole by libdeflate: fixed header (mtime 0,
/// OS "unknown"), deflate data, CRC-32, size.
pub(crate) fn gzip_member(level: u32, data: &[u8]) -> Result<Vec<u8>> {
    let lvl = libdeflate_level(level);
    MEMBER_COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(lvl) {
            let level = libdeflater::CompressionLvl::new(lvl)
                .map_err(|_| Error::Corrupt(format!("libdeflate refused level {lvl}")))?;
            *slot = Some((lvl, libdeflater::Compressor::new(level)));
        }
        let Some((_, compressor)) = slot.as_mut() else {
            return Err(Error::Corrupt("libdeflate compressor missing".into()));
        };
        let mut out = vec![0u8; compressor.gzip_compress_bound(data.len())];
        let n = compressor
            .gzip_compress(data, &mut out)
            .map_err(|e| Error::Corrupt(format!("libdeflate gzip_compress failed: {e}")))?;
        out.truncate(n);
        Ok(out)
    })
}

/// How a layerforge gzip level drives the deflate engine: the level zlib-rs is initialised
/// with (which picks the match finder and the hash) and optional zlib `deflateTune` values
/// (good_length, max_lazy, nice_length, max_chain).
///
/// zlib-rs follows zlib-ng: levels 1-7 use a 4-byte hash and fast match finders, which are
/// quick but give noticeably larger output than `gzip -6` (+3% on a /usr/lib tree); levels
/// 8-9 use zlib's rolling 3-byte hash. Levels 6-8 here start from level 9 (rolling hash,
/// lazy matching) and tune the search, so sizes track gzip's while the faster engine keeps
/// the speed: level 6 (the default) is within ~1% of `gzip -6` at close to twice pigz's
/// throughput; level 7 matches `gzip -6`'s size.
fn level_params(level: u32) -> (i32, Option<(i32, i32, i32, i32)>) {
    match level {
        0..=4 => (level.max(1) as i32, None),
        5 => (6, None),
        6 => (9, Some((8, 16, 32, 32))),
        7 => (9, Some((8, 16, 128, 128))),
        8 => (9, Some((32, 128, 258, 1024))),
        _ => (9, None),
    }
}

/// An owned raw-deflate stream (zlib API of libz-rs-sys), ended on drop.
struct RawDeflate {
    // Boxed: the deflate state keeps a pointer to its stream, so it must not move.
    strm: Box<z::z_stream>,
}

impl RawDeflate {
    fn new(level: u32) -> Result<Self> {
        let (init_level, tune) = level_params(level);
        // SAFETY: an all-zero z_stream (null pointers, no allocator callbacks) is the
        // documented starting state for deflateInit2.
        let mut strm: Box<z::z_stream> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `strm` is a valid, zeroed stream; version and size describe this library.
        let r = unsafe {
            z::deflateInit2_(
                &mut *strm,
                init_level,
                z::Z_DEFLATED,
                -15, // raw deflate, 32 KiB window: gzip framing is written by us
                8,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        if r != z::Z_OK {
            return Err(Error::Corrupt(format!("deflateInit2 failed ({r})")));
        }
        let mut d = RawDeflate { strm };
        if let Some((good, lazy, nice, chain)) = tune {
            // SAFETY: the stream was initialised above.
            let r = unsafe { z::deflateTune(&mut *d.strm, good, lazy, nice, chain) };
            if r != z::Z_OK {
                return Err(Error::Corrupt(format!("deflateTune failed ({r})")));
            }
        }
        Ok(d)
    }

    fn set_dictionary(&mut self, dict: &[u8]) -> Result<()> {
        let len =
            u32::try_from(dict.len()).map_err(|_| Error::Corrupt("dictionary too large".into()))?;
        // SAFETY: `dict` is valid for `len` bytes; deflate copies it into its window.
        let r = unsafe { z::deflateSetDictionary(&mut *self.strm, dict.as_ptr(), len) };
        if r != z::Z_OK {
            return Err(Error::Corrupt(format!("deflateSetDictionary failed ({r})")));
        }
        Ok(())
    }

    /// Compress all of `input`, ending with a sync flush, or with the end of the stream if `last`.
    fn run(&mut self, input: &[u8], last: bool) -> Result<Vec<u8>> {
        let flush = if last { z::Z_FINISH } else { z::Z_SYNC_FLUSH };
        let avail_in = u32::try_from(input.len())
            .map_err(|_| Error::Corrupt("gzip block too large".into()))?;
        let s = &mut *self.strm;
        s.next_in = input.as_ptr();
        s.avail_in = avail_in;
        let mut out: Vec<u8> = Vec::with_capacity(input.len() / 2 + 4096);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64 * 1024));
            }
            let spare = (out.capacity() - out.len()).min(u32::MAX as usize);
            // SAFETY: next_out points at `spare` bytes of the Vec's spare capacity, which deflate
            // writes; only the bytes it reports written are exposed through set_len.
            let r = unsafe {
                s.next_out = out.as_mut_ptr().add(out.len());
                s.avail_out = spare as u32;
                z::deflate(s, flush)
            };
            let written = spare - s.avail_out as usize;
            // SAFETY: deflate initialised exactly `written` more bytes.
            unsafe { out.set_len(out.len() + written) };
            match r {
                z::Z_STREAM_END => break,
                z::Z_OK | z::Z_BUF_ERROR => {
                    if !last && s.avail_in == 0 && s.avail_out > 0 {
                        break;
                    }
                }
                other => return Err(Error::Corrupt(format!("deflate failed ({other})"))),
            }
        }
        s.next_in = std::ptr::null();
        s.next_out = std::ptr::null_mut();
        Ok(out)
    }
}

impl Drop for RawDeflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by deflateInit2 and is ended exactly once.
        unsafe {
            z::deflateEnd(&mut *self.strm);
        }
    }
}

/// Raw-deflate one block. Non-final blocks end with a sync flush (byte aligned, BFINAL=0)
/// so that blocks can be concatenated; the final block ends the deflate stream.
///
/// Each block gets a fresh deflate state: a reused (reset) state can keep stale hash chains
/// from the worker's previous block, which changes match choices (not correctness) and would
/// make the output depend on which worker compressed what.
pub(crate) fn deflate_block(level: u32, dict: &[u8], data: &[u8], last: bool) -> Result<Vec<u8>> {
    let mut d = RawDeflate::new(level)?;
    if !dict.is_empty() {
        d.set_dictionary(dict)?;
    }
    d.run(data, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial: words with a slowly varying pattern.
        let mut v = Vec::with_capacity(n);
        let mut x: u32 = 12345;
        while v.len() < n {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let word =
                ["layer", "forge", "tar", "nix", "store", "blob", "zstd"][(x >> 16) as usize % 7];
            v.extend_from_slice(word.as_bytes());
            v.push(if x % 13 == 0 { b'\n' } else { b' ' });
        }
        v.truncate(n);
        v
    }

    fn gzip_with(threads: usize, data: &[u8], block: usize) -> Vec<u8> {
        framed(GzipFraming::SingleStream, threads, data, block)
    }

    fn framed(framing: GzipFraming, threads: usize, data: &[u8], block: usize) -> Vec<u8> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut g = ParallelGzip::new(Vec::new(), 6, framing, &pool, threads);
        for c in data.chunks(block) {
            g.push(c.to_vec()).unwrap();
        }
        g.finish().unwrap().concat()
    }

    #[test]
    fn round_trips_and_is_thread_count_independent() {
        let data = sample(3 * 1024 * 1024 + 777);
        let one = gzip_with(1, &data, 256 * 1024);
        let four = gzip_with(4, &data, 256 * 1024);
        assert_eq!(one, four);
        let mut back = Vec::new();
        GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len() / 3);
    }

    #[test]
    fn deterministic_across_runs_with_worker_state_reuse() {
        // Many blocks, so each worker compresses several and reuses its state.
        let data = sample(12 * 1024 * 1024);
        let reference = gzip_with(1, &data, 64 * 1024);
        for threads in [2, 3, 4, 2, 3] {
            assert_eq!(
                gzip_with(threads, &data, 64 * 1024),
                reference,
                "threads={threads}"
            );
        }
    }

    const FRAMINGS: [GzipFraming; 2] = [GzipFraming::Members, GzipFraming::SingleStream];

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        MultiGzDecoder::new(data).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn members_round_trip_and_are_thread_count_independent() {
        let data = sample(5 * 1024 * 1024 + 4321);
        let block = 1024 * 1024;
        let one = framed(GzipFraming::Members, 1, &data, block);
        for threads in [2, 3, 4, 2] {
            assert_eq!(
                framed(GzipFraming::Members, threads, &data, block),
                one,
                "threads={threads}"
            );
        }
        assert_eq!(gunzip(&one), data);
        assert!(one.len() < data.len() / 3);
        // One member per block, each a complete gzip file of its own block.
        let mut rest = &one[..];
        for piece in data.chunks(block) {
            let mut dec = flate2::bufread::GzDecoder::new(rest);
            let mut back = Vec::new();
            dec.read_to_end(&mut back).unwrap();
            assert_eq!(back, piece);
            rest = dec.into_inner();
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn every_level_round_trips_and_sizes_shrink_with_level() {
        let data = sample(2 * 1024 * 1024);
        for framing in FRAMINGS {
            let mut sizes = Vec::new();
            for level in 1..=9 {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(2)
                    .build()
                    .unwrap();
                let mut g = ParallelGzip::new(Vec::new(), level, framing, &pool, 2);
                for c in data.chunks(256 * 1024) {
                    g.push(c.to_vec()).unwrap();
                }
                let out = g.finish().unwrap().concat();
                assert_eq!(gunzip(&out), data, "{framing:?} level {level}");
                sizes.push(out.len());
            }
            assert!(
                sizes[8] <= sizes[5] && sizes[5] <= sizes[0],
                "{framing:?} {sizes:?}"
            );
        }
    }

    #[test]
    fn small_blocks_and_empty_input() {
        let data = sample(100_000);
        for framing in FRAMINGS {
            let out = framed(framing, 2, &data, 5000);
            assert_eq!(gunzip(&out), data, "{framing:?}");
            let empty = framed(framing, 2, &[], 5000);
            let mut back = Vec::new();
            GzDecoder::new(&empty[..]).read_to_end(&mut back).unwrap();
            assert!(back.is_empty(), "{framing:?}");
        }
    }
}
