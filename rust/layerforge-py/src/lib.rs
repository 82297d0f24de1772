//! `layerforge._native`: the Python face of layerforge-core.
//!
//! Long work runs on native threads with the GIL released; the calling thread wakes every
//! 100 ms to report progress to an optional Python callback and to notice signals
//! (Ctrl-C, SIGTERM handlers), which cancel the build cleanly: scratch files are removed and
//! no blob appears under a digest name it does not match.

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError};
use layerforge_core::archive_stream::{self, ArchiveLayer};
use layerforge_core::compress::Compression;
use layerforge_core::decompress::{self, Format};
use layerforge_core::elf::MachineCheck;
use layerforge_core::entry::{EntryOptions, LayerSpec as CoreSpec, PermRule};
use layerforge_core::layer::{self, ArchiveFormat, BuildOptions};
use layerforge_core::layer_copy::{self, LayerCopy};
use layerforge_core::sign;
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
    RuleError,
    InputError,
    "A setting's value breaks its rule: `setting` (the rule's name in the table of option rules), `value` and `rule`, for the caller to name its flag or field."
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
        Error::Rule(r) => Python::attach(|py| {
            let err = RuleError::new_err(r.to_string());
            let value = err.value(py);
            for (name, v) in [
                ("setting", r.setting.name()),
                ("value", r.value.as_str()),
                ("rule", r.rule.as_str()),
            ] {
                if let Err(e) = value.setattr(name, v) {
                    return e;
                }
            }
            err
        }),
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
/// With `machine` (an OCI architecture: amd64, arm64, ...), an executable or shared object whose
/// ELF header names another machine is an error naming its path and both machines.
#[pyo3(signature = (specs, blob_dir, tmp_dir, *, format = "tar", compression = "gzip", level = None, threads = 0, chunk_size = 1 << 20, machine = None, progress = None))]
#[allow(clippy::too_many_arguments)]
fn build_layers(
    py: Python<'_>,
    specs: Vec<PyRef<'_, LayerSpec>>,
    blob_dir: PathBuf,
    tmp_dir: PathBuf,
    format: &str,
    compression: &str,
    level: Option<i32>,
    threads: i64,
    chunk_size: usize,
    machine: Option<&str>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<Vec<LayerResult>> {
    let threads = thread_arg(threads)?;
    let machine = machine
        .map(MachineCheck::for_arch)
        .transpose()
        .map_err(to_py)?;
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
        machine,
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
/// Only a regular file is read (never through a symlink, never a FIFO or device); with
/// `digest` and `size` (the descriptor's), the blob is checked while streaming and at most
/// `size` + 1 bytes are read; errors name the blob as `label` (default: its path).
#[pyfunction]
#[pyo3(signature = (src, dest = None, *, digest = None, size = None, label = None, progress = None))]
fn decompress_blob(
    py: Python<'_>,
    src: PathBuf,
    dest: Option<PathBuf>,
    digest: Option<String>,
    size: Option<u64>,
    label: Option<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<DecompressResult> {
    let expect = decompress::Expected {
        digest: digest.as_deref().map(parse_sha256).transpose()?,
        size,
        label,
    };
    let d = run_with_progress(py, progress.as_ref(), move |p| {
        decompress::decompress_verified(&src, dest.as_deref(), &expect, p)
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

/// Copy layer tars that exist as files into the archive `dest` (an existing regular file)
/// at the offsets given, concurrently: each `(src, offset, size, digest, label)` is copied by
/// the kernel, then read back from `dest` and required to be a valid tar hashing to `digest`;
/// errors name the layer as `label`. On an error `dest` holds partial copies: discard it.
#[pyfunction]
#[pyo3(signature = (dest, layers, *, threads = 0, progress = None))]
fn copy_layers(
    py: Python<'_>,
    dest: PathBuf,
    layers: Vec<(PathBuf, u64, u64, String, String)>,
    threads: i64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<()> {
    let threads = thread_arg(threads)?;
    let jobs = layers
        .into_iter()
        .map(|(src, offset, size, digest, label)| {
            Ok(LayerCopy {
                src,
                offset,
                size,
                digest: parse_sha256(&digest)?,
                label,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    run_with_progress(py, progress.as_ref(), move |p| {
        layer_copy::copy_layers(&dest, &jobs, threads, p)
    })
}

/// Write a docker-archive's layer members into `dest` (an existing regular file) from byte
/// `start` on, in order: a LayerSpec is built straight into the archive as a plain tar, a
/// `(src, size, digest, label)` tuple is the layer tar in file `src`, copied in-kernel and
/// verified (a valid tar hashing to `digest`). A diff_id in `known` or met before is written
/// once. Returns `([(diff_id, size, written)], end offset)`. On an error, discard `dest`.
#[pyfunction]
#[pyo3(signature = (dest, layers, *, start = 0, known = Vec::new(), mtime = 1, threads = 0, chunk_size = 1 << 20, machine = None, progress = None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn write_layer_members(
    py: Python<'_>,
    dest: PathBuf,
    layers: Vec<Bound<'_, PyAny>>,
    start: u64,
    known: Vec<String>,
    mtime: u64,
    threads: i64,
    chunk_size: usize,
    machine: Option<&str>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(Vec<(String, u64, bool)>, u64)> {
    let threads = thread_arg(threads)?;
    let machine = machine
        .map(MachineCheck::for_arch)
        .transpose()
        .map_err(to_py)?;
    if !(4096..=64 << 20).contains(&chunk_size) {
        return Err(InputError::new_err(format!(
            "chunk_size must be between 4 KiB and 64 MiB, got {chunk_size}"
        )));
    }
    let mut items = Vec::with_capacity(layers.len());
    for item in &layers {
        if let Ok(spec) = item.extract::<PyRef<'_, LayerSpec>>() {
            items.push(ArchiveLayer::Build(spec.inner.clone()));
            continue;
        }
        let (src, size, digest, label): (PathBuf, u64, String, String) = item.extract()?;
        items.push(ArchiveLayer::File(LayerCopy {
            src,
            offset: 0,
            size,
            digest: parse_sha256(&digest)?,
            label,
        }));
    }
    let known = known
        .iter()
        .map(|d| parse_sha256(d))
        .collect::<PyResult<Vec<_>>>()?;
    let opts = BuildOptions {
        format: ArchiveFormat::Tar,
        compression: Compression::None,
        threads,
        chunk_size,
        machine,
    };
    let (members, end) = run_with_progress(py, progress.as_ref(), move |p| {
        archive_stream::write_layer_members(&dest, start, &known, &items, mtime, &opts, p)
    })?;
    let members = members
        .into_iter()
        .map(|m| (m.diff_id.to_string(), m.size, m.written))
        .collect();
    Ok((members, end))
}

/// What one source layer became in a Nydus conversion.
#[pyclass(module = "layerforge._native", frozen, get_all)]
struct NydusLayerReport {
    /// `sha256:...` of the layer's Nydus blob, or None when the layer stores no chunk.
    blob_digest: Option<String>,
    blob_size: Option<u64>,
    created: bool,
    chunks: usize,
    file_bytes: u64,
    dup_bytes: u64,
    lower_bytes: u64,
    dict_bytes: u64,
}

/// One entry of the merged blob table: a blob this conversion wrote (`layer` = source layer
/// index) or a chunk-dictionary blob (`dict` = its index in the dictionary's blob table).
#[pyclass(module = "layerforge._native", frozen, get_all)]
struct NydusBlob {
    digest: String,
    size: Option<u64>,
    layer: Option<usize>,
    dict: Option<usize>,
}

#[pyclass(module = "layerforge._native", frozen, get_all)]
struct NydusResult {
    layers: Vec<Py<NydusLayerReport>>,
    blobs: Vec<Py<NydusBlob>>,
    /// The merged RAFS v6 bootstrap.
    bootstrap: Py<PyBytes>,
    dict_saved_bytes: u64,
}

fn parse_sha256(s: &str) -> PyResult<layerforge_core::digest::Digest> {
    let hex = s
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| InputError::new_err(format!("'{s}' is not a sha256 digest")))?;
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| InputError::new_err(format!("'{s}' is not a sha256 digest")))?;
    }
    Ok(layerforge_core::digest::Digest(out))
}

/// A worker-thread count from Python: negative is refused by value (the core caps the rest).
fn thread_arg(threads: i64) -> PyResult<usize> {
    usize::try_from(threads).map_err(|_| {
        InputError::new_err(format!(
            "threads: {threads} is negative (0 means one per core)"
        ))
    })
}

/// One source layer: path, descriptor digest and size, config diff_id (each None when not
/// to be checked), and how errors name it.
type NydusLayerArg = (PathBuf, Option<String>, Option<u64>, Option<String>, String);

/// Convert OCI layers into Nydus blobs in `blob_dir` and a merged RAFS v6 bootstrap, checking
/// each blob against its digest and size and its tar against its diff_id as it is read.
/// `chunk_dict` is a bootstrap file.
#[pyfunction]
#[pyo3(signature = (layers, blob_dir, tmp_dir, *, chunk_size = 1 << 20, compressor = "zstd", digester = "blake3", chunk_dict = None, prefetch = Vec::new(), dedup_lower = true, threads = 0, progress = None))]
#[allow(clippy::too_many_arguments)]
fn convert_nydus(
    py: Python<'_>,
    layers: Vec<NydusLayerArg>,
    blob_dir: PathBuf,
    tmp_dir: PathBuf,
    chunk_size: u64,
    compressor: &str,
    digester: &str,
    chunk_dict: Option<PathBuf>,
    prefetch: Vec<String>,
    dedup_lower: bool,
    threads: i64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<NydusResult> {
    let threads = thread_arg(threads)?;
    use layerforge_core::rafs::{algo, convert};
    let chunk_size = algo::validate_chunk_size(chunk_size).map_err(to_py)?;
    let compressor = algo::Compressor::parse(compressor).map_err(to_py)?;
    let digester = algo::Digester::parse(digester).map_err(to_py)?;
    let inputs = layers
        .into_iter()
        .map(|(path, digest, size, diff_id, label)| {
            Ok(convert::LayerInput {
                path,
                digest: digest.as_deref().map(parse_sha256).transpose()?,
                size,
                diff_id: diff_id.as_deref().map(parse_sha256).transpose()?,
                label,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let opts = convert::ConvertOptions {
        chunk_size,
        compressor,
        digester,
        threads,
        prefetch,
        dedup_lower,
    };
    let r = run_with_progress(py, progress.as_ref(), move |p| {
        let dict = chunk_dict
            .map(|path| convert::ChunkDict::load(&path, chunk_size, digester))
            .transpose()?;
        let store = BlobStore::open(blob_dir, tmp_dir)?;
        convert::convert(&inputs, &store, &opts, dict.as_ref(), p)
    })?;
    let layers = r
        .layers
        .into_iter()
        .map(|l| {
            Py::new(
                py,
                NydusLayerReport {
                    blob_digest: l.blob.map(|b| b.0.to_string()),
                    blob_size: l.blob.map(|b| b.1),
                    created: l.created,
                    chunks: l.chunks,
                    file_bytes: l.file_bytes,
                    dup_bytes: l.dup_bytes,
                    lower_bytes: l.lower_bytes,
                    dict_bytes: l.dict_bytes,
                },
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    let blobs = r
        .blobs
        .into_iter()
        .map(|b| {
            let (layer, dict) = match b.source {
                convert::BlobSource::Layer(i) => (Some(i), None),
                convert::BlobSource::Dict(i) => (None, Some(i)),
            };
            Py::new(
                py,
                NydusBlob {
                    digest: format!("sha256:{}", b.id),
                    size: b.size,
                    layer,
                    dict,
                },
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(NydusResult {
        layers,
        blobs,
        bootstrap: PyBytes::new(py, &r.bootstrap).unbind(),
        dict_saved_bytes: r.dict_saved_bytes,
    })
}

/// An ECDSA P-256 private key that signs as cosign does (SHA-256, RFC 6979, ASN.1 DER).
/// Its repr shows no key material; the key is zeroed when the object is freed.
#[pyclass(module = "layerforge._native", frozen)]
struct SigningKey {
    inner: sign::SigningKey,
}

#[pymethods]
impl SigningKey {
    /// Read a private key PEM: unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`),
    /// for which `password` is ignored, or cosign's encrypted key (`ENCRYPTED SIGSTORE PRIVATE
    /// KEY`, `ENCRYPTED COSIGN PRIVATE KEY`), which needs it (`b""` for an empty password).
    /// Keys other than P-256, a wrong password and a malformed file raise InputError.
    #[staticmethod]
    fn from_pem(py: Python<'_>, pem: &[u8], password: Option<&[u8]>) -> PyResult<Self> {
        let inner = py
            .detach(|| sign::read_private_key(pem, password))
            .map_err(to_py)?;
        Ok(SigningKey { inner })
    }

    /// The ASN.1 DER ECDSA signature of `message` (hashed with SHA-256); deterministic.
    fn sign<'py>(&self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let sig = self.inner.sign(message).map_err(to_py)?;
        Ok(PyBytes::new(py, &sig))
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as in cosign.pub.
    fn public_key_pem(&self) -> PyResult<String> {
        self.inner.public_key_pem().map_err(to_py)
    }

    fn __repr__(&self) -> &'static str {
        "<SigningKey ECDSA P-256>"
    }
}

/// Whether `signature_der` is a valid ECDSA P-256 / SHA-256 signature of `message` by the SPKI
/// PEM public key. A malformed signature is False; an unusable public key (not PEM, not P-256)
/// raises InputError.
#[pyfunction]
fn verify_signature(public_key_pem: &[u8], message: &[u8], signature_der: &[u8]) -> PyResult<bool> {
    sign::verify_signature(public_key_pem, message, signature_der).map_err(to_py)
}

/// A new key pair as `cosign generate-key-pair` writes it: (the private key PEM encrypted with
/// `password` in cosign's format, scrypt N=65536 r=8 p=1; the SPKI public key PEM).
#[pyfunction]
fn generate_cosign_key_pair<'py>(
    py: Python<'py>,
    password: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let (private, public) = py
        .detach(|| sign::generate_cosign_key_pair(password))
        .map_err(to_py)?;
    Ok((
        PyBytes::new(py, private.as_bytes()),
        PyBytes::new(py, public.as_bytes()),
    ))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("CorruptError", m.py().get_type::<CorruptError>())?;
    m.add("RuleError", m.py().get_type::<RuleError>())?;
    m.add_class::<LayerSpec>()?;
    m.add_class::<LayerResult>()?;
    m.add_class::<DecompressResult>()?;
    m.add_function(wrap_pyfunction!(build_layers, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_blob, m)?)?;
    m.add_function(wrap_pyfunction!(copy_layers, m)?)?;
    m.add_function(wrap_pyfunction!(write_layer_members, m)?)?;
    m.add_class::<NydusLayerReport>()?;
    m.add_class::<NydusBlob>()?;
    m.add_class::<NydusResult>()?;
    m.add_function(wrap_pyfunction!(convert_nydus, m)?)?;
    m.add_class::<SigningKey>()?;
    m.add_function(wrap_pyfunction!(verify_signature, m)?)?;
    m.add_function(wrap_pyfunction!(generate_cosign_key_pair, m)?)?;
    Ok(())
}
