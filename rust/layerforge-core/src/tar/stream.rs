//! Serialising a sorted entry list as one tar stream.

use super::header::{encode_header, BLOCK_SIZE};
use crate::chunk::{ChunkSink, ChunkWriter};
use crate::content::{write_content, ContentCheck};
use crate::elf::MachineCheck;
use crate::entry::{Entry, Kind};
use crate::error::Result;
use crate::progress::Progress;

/// Write `entries` (already sorted and normalised) followed by the end-of-archive marker.
/// File contents are read as they are written; `progress` advances by content bytes. With
/// `machine`, an executable built for another machine is an error (see [`crate::elf`]).
pub fn write_tar<S: ChunkSink>(
    entries: &[Entry],
    out: &mut ChunkWriter<S>,
    progress: &Progress,
    machine: Option<&MachineCheck>,
) -> Result<()> {
    let mut hdr = Vec::with_capacity(3 * BLOCK_SIZE);
    for e in entries {
        progress.check()?;
        hdr.clear();
        encode_header(e, &mut hdr)?;
        out.write(&hdr)?;
        if let Kind::File { content, size } = &e.kind {
            let check = machine.map(|machine| ContentCheck { entry: e, machine });
            write_content(content, *size, out, progress, check)?;
            let rem = (*size % BLOCK_SIZE as u64) as usize;
            if rem != 0 {
                out.zeros(BLOCK_SIZE - rem)?;
            }
        }
    }
    out.zeros(2 * BLOCK_SIZE)
}

/// How many bytes [`write_tar`] writes for `entries` (headers, padded contents, the
/// end-of-archive marker), known before any file is read.
pub fn tar_size(entries: &[Entry]) -> Result<u64> {
    let mut hdr = Vec::with_capacity(3 * BLOCK_SIZE);
    let mut total = 2 * BLOCK_SIZE as u64;
    for e in entries {
        hdr.clear();
        encode_header(e, &mut hdr)?;
        total += hdr.len() as u64;
        if let Kind::File { size, .. } = &e.kind {
            total += size.div_ceil(BLOCK_SIZE as u64) * BLOCK_SIZE as u64;
        }
    }
    Ok(total)
}
