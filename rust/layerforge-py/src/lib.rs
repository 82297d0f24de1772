//! `layerforge._native`: the Python face of layerforge-core.
//!
//! Long work runs on native threads with the GIL released; the calling thread wakes every
//! 100 ms to report progress to an optional Python callback and to notice signals
//! (Ctrl-C, SIGTERM handlers), which cancel the build cleanly: scratch files are removed and
//! no blob appears under a digest name it does not match.

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError};
use layerforge_core::compress::Compression;
use layerforge_core::decompress::{self, Format};
use layerforge_core::entry::{EntryOptions, LayerSpec as CoreSpec, PermRule};
use layerforge_core::layer::{self, ArchiveFormat, BuildOptions};
use layerforge_core::{blob::BlobStore, progress::Progress, Error};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _native,
    InputError,
    PyValueError,
    "Input that cannot be turned into a layer."
);
create_exception!(
    _native,
    CorruptError,
    PyValueError,
    "A blob that does not decode or verify."
);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Input(m) => InputError::new_err(m),
        Error::Corrupt(m) => CorruptError::new_err(m),
        e @ Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Cancelled => PyKeyboardInterrupt::new_err("cancelled"),
        e @ Error::StageStopped => PyRuntimeError::new_err(e.to_string()),
    }
}

const POLL: Duration = Duration::from_millis(100);

/// Run `work` off the GIL; relay progress and signals until it finishes.
fn run_with_progress<T: Send>(
    py: Python<'_>,
    callback: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(&Progress) -> layerforge_core::Result<T> + Send,
) -> PyResult<T> {
    let progress = Progress::new();
    let (tx, rx) = bounded::<()>(1);
    std::thread::scope(|s| {
        let p = &progress;
        let handle = s.spawn(move || {
            let r = work(p);
            let _ = tx.send(());
            r
        });
        let mut pending: Option<PyErr> = None;
        loop {
            let done =
                py.detach(|| !matches!(rx.recv_timeout(POLL), Err(RecvTimeoutError::Timeout)));
            if done {
                break;
            }
            if pending.is_some() {
                continue;
            }
            let step = py.check_signals().and_then(|()| match callback {
                Some(cb) => cb.call1((progress.done(), progress.total())).map(drop),
                None => Ok(()),
            });
            if let Err(e) = step {
                progress.cancel();
                pending = Some(e);
            }
        }
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(Error::Corrupt("native worker panicked".into())));
        if let Some(e) = pending {
            return Err(e);
        }
        let value = result.map_err(to_py)?;
        if let Some(cb) = callback {
            cb.call1((progress.total(), progress.total()))?;
        }
        Ok(value)
    })
}

/// (path, kind, mode, size, link target) of a resolved entry.
type EntryTuple = (String, &'static str, u32, u64, Option<String>);

/// What goes into one layer. Destinations are image paths; sources are never followed
/// through symlinks (except the root of a tree).
#[pyclass(module = "layerforge._native", skip_from_py_object)]
struct LayerSpec {
    inner: CoreSpec,
}

#[pymethods]
impl LayerSpec {
    #[new]
    #[pyo3(signature = (*, mtime = 1, uid = 0, gid = 0, keep_setuid = false))]
    fn new(mtime: u64, uid: u32, gid: u32, keep_setuid: bool) -> Self {
        LayerSpec {
            inner: CoreSpec::new(EntryOptions {
                mtime,
                uid,
                gid,
                keep_setuid,
            }),
        }
    }

    /// Add one filesystem object (a directory adds only itself).
    fn add_path(&mut self, src: PathBuf, dest: String) {
        self.inner.add_path(src, dest);
    }

    /// Add a directory tree at `dest`.
    #[pyo3(signature = (src, dest = "/".to_string()))]
    fn add_tree(&mut self, src: PathBuf, dest: String) {
        self.inner.add_tree(src, dest);
    }

    #[pyo3(signature = (dest, mode = 0o755))]
    fn add_dir(&mut self, dest: String, mode: u32) {
        self.inner.add_dir(dest, mode);
    }

    fn add_symlink(&mut self, dest: String, target: String) {
        self.inner.add_symlink(dest, target);
    }

    #[pyo3(signature = (dest, data, mode = 0o644))]
    fn add_file(&mut self, dest: String, data: &Bound<'_, PyBytes>, mode: u32) {
        self.inner.add_file(dest, data.as_bytes().to_vec(), mode);
    }

    /// Add a device node or fifo: `kind` is "char", "block" or "fifo".
    #[pyo3(signature = (dest, kind, major = 0, minor = 0, mode = 0o600))]
    fn add_node(
        &mut self,
        dest: String,
        kind: &str,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> PyResult<()> {
        use layerforge_core::entry::Kind;
        let kind = match kind {
            "char" | "c" => Kind::CharDevice { major, minor },
            "block" | "b" => Kind::BlockDevice { major, minor },
            "fifo" | "p" => Kind::Fifo,
            other => {
                return Err(InputError::new_err(format!(
                    "'{dest}': unknown node kind '{other}' (expected char, block or fifo)"
                )))
            }
        };
        self.inner.add_node(dest, kind, mode).map_err(to_py)?;
        Ok(())
    }

    /// Override mode/uid/gid of entries whose absolute path fully matches `pattern` (Rust
    /// regex syntax); later rules win field by field.
    #[pyo3(signature = (pattern, mode = None, uid = None, gid = None))]
    fn add_perm_rule(
        &mut self,
        pattern: String,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) {
        self.inner.add_perm_rule(PermRule {
            pattern,
            mode,
            uid,
            gid,
        });
    }

    /// The resolved entries as (path, kind, mode, size, link target) tuples, in archive order.
    fn entries(&self, py: Python<'_>) -> PyResult<Vec<EntryTuple>> {
        let spec = self.inner.clone();
        let entries = py.detach(move || spec.collect()).map_err(to_py)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                use layerforge_core::entry::Kind;
                let link = match &e.kind {
                    Kind::Symlink { target } | Kind::Hardlink { target } => Some(target.clone()),
                    _ => None,
                };
                let kind = match e.kind {
                    Kind::Dir => "dir",
                    Kind::File { .. } => "file",
                    Kind::Symlink { .. } => "symlink",
                    Kind::Hardlink { .. } => "hardlink",
                    Kind::Fifo => "fifo",
                    Kind::CharDevice { .. } => "char",
                    Kind::BlockDevice { .. } => "block",
                };
                let size = e.content_size();
                (e.path, kind, e.mode, size, link)
            })
            .collect())
    }

    fn __len__(&self) -> usize {
        self.inner.items.len()
    }
}

/// A built layer blob.
#[pyclass(module = "layerforge._native", frozen, get_all)]
struct LayerResult {
    diff_id: String,
    digest: String,
    size: u64,
    uncompressed_size: u64,
    created: bool,
}

#[pymethods]
impl LayerResult {
    fn __repr__(&self) -> String {
        format!(
            "LayerResult(digest={:?}, diff_id={:?}, size={})",
            self.digest, self.diff_id, self.size
        )
    }
}

/// Build one blob per spec into `blob_dir` (scratch files in `tmp_dir`, same filesystem).
#[pyfunction]
#[pyo3(signature = (specs, blob_dir, tmp_dir, *, format = "tar", compression = "gzip", level = None, threads = 0, chunk_size = 1 << 20, progress = None))]
#[allow(clippy::too_many_arguments)]
fn build_layers(
    py: Python<'_>,
    specs: Vec<PyRef<'_, LayerSpec>>,
    blob_dir: PathBuf,
    tmp_dir: PathBuf,
    format: &str,
    compression: &str,
    level: Option<i32>,
    threads: usize,
    chunk_size: usize,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<Vec<LayerResult>> {
    let format = ArchiveFormat::parse(format).map_err(to_py)?;
    let compression = Compression::parse(compression, level).map_err(to_py)?;
    if !(4096..=64 << 20).contains(&chunk_size) {
        return Err(InputError::new_err(format!(
            "chunk_size must be between 4 KiB and 64 MiB, got {chunk_size}"
        )));
    }
    let specs: Vec<CoreSpec> = specs.iter().map(|s| s.inner.clone()).collect();
    let opts = BuildOptions {
        format,
        compression,
        threads,
        chunk_size,
    };
    let results = run_with_progress(py, progress.as_ref(), move |p| {
        let store = BlobStore::open(blob_dir, tmp_dir)?;
        layer::build_layers(&specs, &store, &opts, p)
    })?;
    Ok(results
        .into_iter()
        .map(|r| LayerResult {
            diff_id: r.diff_id.to_string(),
            digest: r.digest.to_string(),
            size: r.size,
            uncompressed_size: r.uncompressed_size,
            created: r.created,
        })
        .collect())
}

/// A decompressed (or merely verified) blob.
#[pyclass(module = "layerforge._native", frozen, get_all)]
struct DecompressResult {
    format: &'static str,
    digest: String,
    diff_id: String,
    size: u64,
    uncompressed_size: u64,
}

/// Decompress a gzip/zstd/plain blob into `dest` (atomically), or only hash it if `dest` is None.
#[pyfunction]
#[pyo3(signature = (src, dest = None, *, progress = None))]
fn decompress_blob(
    py: Python<'_>,
    src: PathBuf,
    dest: Option<PathBuf>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<DecompressResult> {
    let d = run_with_progress(py, progress.as_ref(), move |p| {
        decompress::decompress_file(&src, dest.as_deref(), p)
    })?;
    Ok(DecompressResult {
        format: match d.format {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Plain => "none",
        },
        digest: d.digest.to_string(),
        diff_id: d.diff_id.to_string(),
        size: d.size,
        uncompressed_size: d.uncompressed_size,
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("CorruptError", m.py().get_type::<CorruptError>())?;
    m.add_class::<LayerSpec>()?;
    m.add_class::<LayerResult>()?;
    m.add_class::<DecompressResult>()?;
    m.add_function(wrap_pyfunction!(build_layers, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_blob, m)?)?;
    Ok(())
}
