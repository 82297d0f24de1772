//! Serialising a sorted entry list as one tar stream.

use super::header::{encode_header, BLOCK_SIZE};
use crate::chunk::{ChunkSink, ChunkWriter};
use crate::content::write_content;
use crate::entry::{Entry, Kind};
use crate::error::Result;
use crate::progress::Progress;

/// Write `entries` (already sorted and normalised) followed by the end-of-archive marker.
/// File contents are read as they are written; `progress` advances by content bytes.
pub fn write_tar<S: ChunkSink>(
    entries: &[Entry],
    out: &mut ChunkWriter<S>,
    progress: &Progress,
) -> Result<()> {
    let mut hdr = Vec::with_capacity(3 * BLOCK_SIZE);
    for e in entries {
        progress.check()?;
        hdr.clear();
        encode_header(e, &mut hdr)?;
        out.write(&hdr)?;
        if let Kind::File { content, size } = &e.kind {
            write_content(content, *size, out, progress)?;
            let rem = (*size % BLOCK_SIZE as u64) as usize;
            if rem != 0 {
                out.zeros(BLOCK_SIZE - rem)?;
            }
        }
    }
    out.zeros(2 * BLOCK_SIZE)
}
