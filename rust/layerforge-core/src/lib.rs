//! layerforge-core: the native primitives behind layerforge.
//!
//! * [`entry`]: what goes into a layer, normalised for reproducibility.
//! * [`tar`]: deterministic ustar/PAX serialisation.
//! * [`cpio`]: deterministic newc cpio (initramfs) serialisation.
//! * [`compress`]: parallel gzip and multi-threaded zstd with thread-count-independent output.
//! * [`blob`]: the content-addressed store with atomic writes.
//! * [`layer`]: the one-pass pipeline that ties them together.
//! * [`archive_stream`]: a docker-archive's layer members, built or copied in one pass.
//! * [`layer_copy`]: layers that exist as files copied into an archive, verified.
//! * [`decompress`]: reading layer blobs back (docker-archive export, verification).
//! * [`rafs`]: Nydus RAFS v6 conversion (data blobs, bootstraps, merge).
//! * [`rules`]: errors of settings by value (the caller names the flag or field).
//! * [`sign`]: offline ECDSA P-256 keys, signatures and verification in cosign's formats.

pub mod archive_stream;
pub mod blob;
pub mod chunk;
pub mod compress;
pub mod concurrent;
pub mod content;
pub mod cpio;
pub mod decompress;
pub mod digest;
pub mod elf;
pub mod entry;
pub mod error;
pub mod file_mode;
pub mod layer;
pub mod layer_copy;
pub mod progress;
pub mod rafs;
pub mod rules;
pub mod sign;
pub mod tar;

pub use error::{Error, Result};
