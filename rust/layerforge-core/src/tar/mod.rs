//! Deterministic POSIX tar (ustar + PAX) streams, and ([`read`]) reading untrusted ones.
//!
//! Only ustar headers and PAX extended headers are written: no GNU or sparse extensions,
//! no atime/ctime, no xattrs, owner names `root` for uid/gid 0. Together with the
//! normalised entries from [`crate::entry`], the same inputs give the same bytes anywhere.

mod header;
pub mod read;
mod stream;

pub use header::{encode_header, BLOCK_SIZE};
pub use stream::{tar_size, write_tar};
