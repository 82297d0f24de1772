//! The filesystem model of the archives layerforge writes from files (tar layers and newc
//! cpio initrds). Nydus conversion reads layer tars instead and keeps its own tree
//! (`rafs::tree`).
//!
//! A [`LayerSpec`] says what goes into a layer (files from disk, whole trees, synthetic
//! entries); [`LayerSpec::collect`] turns it into the sorted, normalised [`Entry`] list that
//! a format writer serialises. All host-dependent metadata (owners, times, inode numbers)
//! is dropped or replaced here, so writers only ever see reproducible values.

mod collect;
mod path;
mod spec;

use std::path::PathBuf;
use std::sync::Arc;

pub use path::{normalize_dest, sort_key};
pub use spec::{EntryOptions, LayerSpec, PermRule, SpecItem};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Read from this path when the archive is written.
    Disk(PathBuf),
    /// Held in memory.
    Bytes(Arc<[u8]>),
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        content: Content,
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// A hard link to an earlier entry of the same archive (its normalised path).
    Hardlink {
        target: String,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

impl Kind {
    pub fn is_dir(&self) -> bool {
        matches!(self, Kind::Dir)
    }

    /// A short human name, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File { .. } => "file",
            Kind::Symlink { .. } => "symlink",
            Kind::Hardlink { .. } => "hard link",
            Kind::Fifo => "fifo",
            Kind::CharDevice { .. } => "character device",
            Kind::BlockDevice { .. } => "block device",
        }
    }
}

/// One archive member, with reproducible metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalised destination: relative, `/`-separated, no `.`/`..`, no trailing slash.
    pub path: String,
    pub kind: Kind,
    /// Permission bits, including setuid/setgid/sticky when they were kept.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch (SOURCE_DATE_EPOCH).
    pub mtime: u64,
}

impl Entry {
    /// Bytes of file content this entry contributes (0 for everything but regular files).
    pub fn content_size(&self) -> u64 {
        match &self.kind {
            Kind::File { size, .. } => *size,
            _ => 0,
        }
    }
}

/// Total content bytes of a collected entry list (what progress counts against).
pub fn total_content_size(entries: &[Entry]) -> u64 {
    entries.iter().map(Entry::content_size).sum()
}
