//! Error type shared by every native primitive.
//!
//! Errors carry enough context (the file, the destination path, the operation)
//! for a user to act on them without a backtrace.

use std::io;
use std::path::Path;

use crate::rules::RuleError;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input cannot be turned into a layer (bad path, unsupported file type, ...).
    #[error("{0}")]
    Input(String),

    /// A setting's value breaks its rule: the setting, the value and the rule, for the caller
    /// to name as its flag or field.
    #[error("{0}")]
    Rule(RuleError),

    /// An operating-system error, with what we were doing when it happened.
    #[error("{context}: {}", io_text(.source))]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// A stream did not decode, or decoded to something other than promised.
    #[error("{0}")]
    Corrupt(String),

    /// The build was cancelled (Ctrl-C, SIGTERM, or the caller asked).
    #[error("cancelled")]
    Cancelled,

    /// Another stage of the same pipeline failed; its error is the one to report.
    #[error("pipeline stage stopped")]
    StageStopped,
}

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wrap an I/O error with the operation and the path it concerned.
    pub fn io_path(op: &str, path: &Path, source: io::Error) -> Self {
        Error::io(format!("{op} '{}'", path.display()), source)
    }

    /// Rank used to pick the error worth reporting when several pipeline stages fail:
    /// a real cause beats cancellation, which beats "the other side went away".
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Error::StageStopped => 0,
            Error::Cancelled => 1,
            _ => 2,
        }
    }
}

/// An io::Error's text without Rust's " (os error N)" suffix, as users know it from the shell.
fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s,
    }
}

/// Keep the most informative of two errors (see [`Error::rank`]).
pub(crate) fn most_relevant(a: Error, b: Error) -> Error {
    if b.rank() > a.rank() {
        b
    } else {
        a
    }
}

/// Attach context to `io::Result`s.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
