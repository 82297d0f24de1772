//! Reading one OCI layer (gzip, zstd or plain tar) into a [`Tree`] and a stream of chunks.
//!
//! The calling thread decompresses and parses the tar; every file is cut into fixed-size
//! chunks that are digested and compressed on the worker pool; a writer thread takes the
//! results in stream order, deduplicates them (inside the layer, and against a chunk
//! dictionary) and appends new chunks to a scratch file. Output depends only on the input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::algo::{Compressor, Digester};
use super::blob_writer::HashedWriter;
use super::inode::encode_rdev;
use super::tree::{Inode, Tree};
use super::whiteout;
use crate::blob::{BlobStore, TempBlob};
use crate::concurrent::JobStop;
use crate::decompress::{sniff_file, Format, HashingReader};
use crate::digest::{Digest, Hasher};
use crate::error::{most_relevant, Error, Result};
use crate::file_mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG};
use crate::progress::Progress;
use crate::tar::read::{Member, TarReader};

/// Chunks already known elsewhere (a chunk dictionary): digest and size -> dictionary index.
pub type KnownChunks = HashMap<([u8; 32], u32), u32>;

/// How one file chunk of the stream was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRef {
    /// A chunk stored in this layer's data (index into [`LayerScan::stored`]).
    Own(u32),
    /// A chunk of the dictionary.
    Known(u32),
}

#[derive(Debug, Clone, Copy)]
pub struct StoredChunk {
    pub digest: [u8; 32],
    pub uncompressed_size: u32,
    pub compressed_size: u32,
    pub compressed: bool,
    /// Offset in the scratch data file.
    pub offset: u64,
}

pub struct ScanOptions {
    pub chunk_size: u32,
    pub compressor: Compressor,
    pub digester: Digester,
    /// In-flight chunks per layer (memory bound).
    pub queue: usize,
}

/// A scanned layer: its tree (inode chunk lists hold stream sequence numbers), how every
/// sequence number resolved, and the scratch file holding the new chunks' data.
pub struct LayerScan {
    pub tree: Tree,
    pub seqs: Vec<SeqRef>,
    pub stored: Vec<StoredChunk>,
    pub data: Option<TempBlob>,
    pub data_hasher: Hasher,
    pub data_size: u64,
    /// sha256 of the blob as read, and of its uncompressed tar stream.
    pub digest: Digest,
    pub diff_id: Digest,
    /// Uncompressed bytes of file data, and those found twice inside the layer.
    pub file_bytes: u64,
    pub dup_bytes: u64,
}

struct ChunkDone {
    digest: [u8; 32],
    size: u32,
    payload: Vec<u8>,
    compressed: bool,
    known: Option<u32>,
}

/// Chunk buffers going round (reader -> pool -> writer -> reader) instead of being allocated,
/// zeroed and faulted in for every chunk: `plain` ones hold file data, `packed` ones
/// compressed chunks. A full pool drops what is given back.
#[derive(Clone)]
struct ChunkBuffers {
    plain: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    packed: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
}

impl ChunkBuffers {
    fn new(depth: usize) -> Self {
        ChunkBuffers {
            plain: bounded(depth),
            packed: bounded(depth),
        }
    }

    fn take(&self, packed: bool) -> Vec<u8> {
        let pool = if packed { &self.packed } else { &self.plain };
        pool.1.try_recv().unwrap_or_default()
    }

    fn give(&self, buf: Vec<u8>, packed: bool) {
        let pool = if packed { &self.packed } else { &self.plain };
        let _ = pool.0.try_send(buf);
    }
}

#[allow(clippy::too_many_arguments)]
pub fn scan_layer(
    path: &Path,
    expected_size: Option<u64>,
    store: &BlobStore,
    opts: &ScanOptions,
    known: &Arc<KnownChunks>,
    pool: &rayon::ThreadPool,
    progress: &Progress,
    stop: &JobStop<'_>,
) -> Result<LayerScan> {
    let (file, size) = open_blob(path)?;
    if let Some(want) = expected_size.filter(|&w| w != size) {
        return Err(Error::Corrupt(format!(
            "the blob is {size} bytes, but its descriptor says {want}"
        )));
    }
    if size == 0 {
        return Err(Error::input(
            "the layer blob is empty (0 bytes), not a tar archive",
        ));
    }
    let mut data = store.begin()?;
    let data_path = data.path().display().to_string();
    // The writer owns (and closes) the scratch file: a scanned layer holds no descriptor.
    let data_file = data.take_file()?;
    let (q_tx, q_rx) = bounded::<Receiver<ChunkDone>>(opts.queue.max(2));
    let buffers = ChunkBuffers::new(opts.queue.max(2) + pool.current_num_threads() + 2);
    let for_writer = buffers.clone();

    std::thread::scope(|s| {
        let writer = s.spawn(move || write_chunks(q_rx, data_file, data_path, stop, for_writer));
        let read = read_tar(file, size, opts, known, pool, progress, stop, q_tx, buffers);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(Error::Corrupt("chunk writer panicked".into())));
        match (read, written) {
            (Ok((tree, (digest, diff_id), file_bytes, chunk_count)), Ok(w)) => {
                if w.seqs.len() != chunk_count {
                    return Err(Error::Corrupt("chunk stream out of step".into()));
                }
                Ok(LayerScan {
                    tree,
                    seqs: w.seqs,
                    stored: w.stored,
                    data: Some(data),
                    data_hasher: w.hasher,
                    data_size: w.size,
                    digest,
                    diff_id,
                    file_bytes,
                    dup_bytes: w.dup_bytes,
                })
            }
            (a, b) => Err([a.err(), b.err()]
                .into_iter()
                .flatten()
                .fold(Error::StageStopped, most_relevant)),
        }
    })
}

struct Written {
    seqs: Vec<SeqRef>,
    stored: Vec<StoredChunk>,
    hasher: Hasher,
    size: u64,
    dup_bytes: u64,
}

fn write_chunks(
    queue: Receiver<Receiver<ChunkDone>>,
    file: File,
    what: String,
    stop: &JobStop<'_>,
    buffers: ChunkBuffers,
) -> Result<Written> {
    let mut w = HashedWriter::new(BufWriter::with_capacity(1 << 20, file), what);
    let mut seen: HashMap<([u8; 32], u32), u32> = HashMap::new();
    let mut seqs = Vec::new();
    let mut stored: Vec<StoredChunk> = Vec::new();
    let mut dup_bytes = 0u64;
    for rx in queue {
        stop.check()?;
        let done = rx.recv().map_err(|_| Error::StageStopped)?;
        if let Some(k) = done.known {
            seqs.push(SeqRef::Known(k));
            continue;
        }
        if let Some(&i) = seen.get(&(done.digest, done.size)) {
            dup_bytes += u64::from(done.size);
            seqs.push(SeqRef::Own(i));
            continue;
        }
        let i = stored.len() as u32;
        stored.push(StoredChunk {
            digest: done.digest,
            uncompressed_size: done.size,
            compressed_size: done.payload.len() as u32,
            compressed: done.compressed,
            offset: w.pos(),
        });
        w.write(&done.payload)?;
        buffers.give(done.payload, done.compressed);
        seen.insert((done.digest, done.size), i);
        seqs.push(SeqRef::Own(i));
    }
    let (_file, hasher, size) = w.into_parts()?;
    Ok(Written {
        seqs,
        stored,
        hasher,
        size,
        dup_bytes,
    })
}

/// Open a blob for reading: only a regular file (a FIFO or a device would block or never
/// end), opened without waiting on it. Returns the file and its size.
pub fn open_blob(path: &Path) -> Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io_path("cannot read", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io_path("cannot read", path, e))?;
    if !meta.is_file() {
        return Err(Error::input(format!(
            "'{}' is not a regular file, so not a blob",
            path.display()
        )));
    }
    Ok((file, meta.len()))
}

/// The tree, (blob digest, diff_id), file bytes and chunk count of a layer.
type ReadOutcome = (Tree, (Digest, Digest), u64, usize);

/// Hashes the uncompressed tar stream as the parser pulls it (the layer's diff_id).
struct DiffIdReader<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: Read> Read for DiffIdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[allow(clippy::too_many_arguments)]
fn read_tar(
    file: File,
    size: u64,
    opts: &ScanOptions,
    known: &Arc<KnownChunks>,
    pool: &rayon::ThreadPool,
    progress: &Progress,
    stop: &JobStop<'_>,
    queue: Sender<Receiver<ChunkDone>>,
    buffers: ChunkBuffers,
) -> Result<ReadOutcome> {
    let format = sniff_file(&file).map_err(|e| Error::io("cannot read the layer blob", e))?;
    // Never more than the size the file had when it was checked (it could grow meanwhile).
    let mut raw = BufReader::with_capacity(1 << 20, HashingReader::new(file.take(size), progress));
    let corrupt = move |e: io::Error| {
        Error::Corrupt(format!(
            "not a valid {} tar stream: {e}",
            format_name(format)
        ))
    };
    let mut seq = 0usize;
    let mut file_bytes = 0u64;
    let mut dispatch = |data: Vec<u8>| -> Result<u32> {
        let (tx, rx) = bounded(1);
        let known = Arc::clone(known);
        let (compressor, digester) = (opts.compressor, opts.digester);
        let buffers = buffers.clone();
        pool.spawn(move || {
            let digest = digester.digest(&data);
            let size = data.len() as u32;
            let hit = known.get(&(digest, size)).copied();
            let (payload, compressed) = if hit.is_some() {
                buffers.give(data, false);
                (Vec::new(), false)
            } else {
                let mut z = buffers.take(true);
                if let Ok(true) = compressor.compress_into(&data, &mut z) {
                    buffers.give(data, false);
                    (z, true)
                } else {
                    buffers.give(z, true);
                    (data, false)
                }
            };
            let done = ChunkDone {
                digest,
                size,
                payload,
                compressed,
                known: hit,
            };
            let _ = tx.send(done);
        });
        queue.send(rx).map_err(|_| Error::StageStopped)?;
        seq += 1;
        Ok((seq - 1) as u32)
    };

    let (tree, diff_id) = {
        // The decoders borrow the raw reader, so whatever follows the stream can be drained
        // from it (and hashed) afterwards. Decoded bytes come in large steps: the tar parser's
        // 512-byte reads are served from a buffer.
        let decoded: Box<dyn Read + '_> = match format {
            Format::Gzip => Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(&mut raw),
            )),
            Format::Zstd => Box::new(BufReader::with_capacity(
                1 << 20,
                zstd::stream::read::Decoder::with_buffer(&mut raw).map_err(corrupt)?,
            )),
            Format::Plain => Box::new(&mut raw),
        };
        // A plain tar is its own uncompressed stream: its diff_id is the blob digest.
        let mut decoded = DiffIdReader {
            inner: decoded,
            hasher: (format != Format::Plain).then(Hasher::new),
        };
        let tree = parse(
            &mut decoded,
            opts,
            stop,
            &mut dispatch,
            &buffers,
            &mut file_bytes,
        )
        .map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!(
                "not a valid {} tar stream: {m}",
                format_name(format)
            )),
            other => other,
        })?;
        // The diff_id covers the whole uncompressed stream, padding after the archive's end
        // included.
        io::copy(&mut decoded, &mut io::sink()).map_err(corrupt)?;
        (tree, decoded.hasher.map(Hasher::finish))
    };
    drop(queue);
    io::copy(&mut raw, &mut io::sink()).map_err(corrupt)?;
    let digest = raw.into_inner().digest();
    Ok((tree, (digest, diff_id.unwrap_or(digest)), file_bytes, seq))
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Gzip => "gzip-compressed",
        Format::Zstd => "zstd-compressed",
        Format::Plain => "plain",
    }
}

/// The longest path (and symlink target) a member may have: PATH_MAX without its NUL.
pub const MAX_PATH: usize = 4095;
/// The longest name one path component may have (NAME_MAX, EROFS' limit).
pub const MAX_NAME: usize = 255;
/// Chunks one file may have (a RAFS chunk index has 24 bits).
const MAX_FILE_CHUNKS: u64 = 1 << 24;

/// Parse the tar stream into a tree. Errors name the member.
fn parse<R: Read>(
    reader: R,
    opts: &ScanOptions,
    stop: &JobStop<'_>,
    dispatch: &mut dyn FnMut(Vec<u8>) -> Result<u32>,
    buffers: &ChunkBuffers,
    file_bytes: &mut u64,
) -> Result<Tree> {
    let mut archive = TarReader::new(reader);
    let mut tree = Tree::new();
    while let Some(m) = archive.next_member()? {
        stop.check()?;
        let shown = m.shown();
        let ctx = |e: Error| match e {
            Error::Input(m) if !m.starts_with('\'') => {
                Error::Input(format!("member '{shown}': {m}"))
            }
            other => other,
        };
        // Archive-wide and GNU long-name records carry no entry.
        if matches!(m.kind, b'g' | b'L' | b'K') {
            continue;
        }
        // 1. The name, the metadata every entry has, the link target.
        let comps = member_components(&m.path).map_err(ctx)?;
        let comp_refs: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
        let base = member_metadata(&m).map_err(ctx)?;
        let link = link_target(&m).map_err(ctx)?;
        // 2. The entry itself: a hard link to an earlier entry, or an inode of its kind
        // (a file's data cut into chunks and handed to the pool).
        if m.kind == b'1' {
            let t = components(&link.unwrap_or_default()).map_err(ctx)?;
            let t_refs: Vec<&[u8]> = t.iter().map(Vec::as_slice).collect();
            tree.insert_link(&comp_refs, &t_refs).map_err(ctx)?;
            continue;
        }
        let perm = m.mode & 0o7777;
        let inode = match m.kind {
            b'5' => Inode {
                mode: S_IFDIR | perm,
                ..base
            },
            b'0' | b'7' => {
                let size = m.size;
                let chunks =
                    read_file_chunks(&mut archive, size, opts, dispatch, buffers).map_err(ctx)?;
                *file_bytes += size;
                Inode {
                    mode: S_IFREG | perm,
                    size,
                    chunks,
                    ..base
                }
            }
            b'2' => {
                let target = link.unwrap_or_default();
                if target.is_empty() {
                    return Err(ctx(Error::input("symlink without a target")));
                }
                Inode {
                    mode: S_IFLNK | 0o777,
                    size: target.len() as u64,
                    target,
                    ..base
                }
            }
            b'3' | b'4' | b'6' => {
                let ty = match m.kind {
                    b'3' => S_IFCHR,
                    b'4' => S_IFBLK,
                    _ => S_IFIFO,
                };
                Inode {
                    mode: ty | perm,
                    rdev: encode_rdev(m.dev.0, m.dev.1),
                    ..base
                }
            }
            other => {
                return Err(ctx(Error::input(format!(
                    "unsupported tar entry type '{}'",
                    shown_byte(other)
                ))))
            }
        };
        // 3. Into the tree.
        tree.insert(&comp_refs, inode).map_err(ctx)?;
    }
    Ok(tree)
}

/// Owner, mtime and xattrs of a member (PAX records win over the header; the last record
/// of an xattr counts), as the base of its inode.
fn member_metadata(m: &Member) -> Result<Inode> {
    let (mut uid, mut gid, mut mtime) = (m.uid, m.gid, m.mtime);
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (key, value) in &m.pax {
        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.".as_slice()) {
            xattrs.retain(|(n, _)| n.as_slice() != name);
            xattrs.push((name.to_vec(), value.clone()));
        } else if key == b"uid" {
            uid = parse_num(value).unwrap_or(uid);
        } else if key == b"gid" {
            gid = parse_num(value).unwrap_or(gid);
        } else if key == b"mtime" {
            mtime = parse_num(value).unwrap_or(mtime);
        }
    }
    xattrs.sort();
    let id = |what: &str, v: u64| {
        u32::try_from(v).map_err(|_| Error::input(format!("{what} {v} does not fit 32 bits")))
    };
    Ok(Inode {
        uid: id("uid", uid)?,
        gid: id("gid", gid)?,
        mtime,
        xattrs,
        ..Inode::default()
    })
}

/// The member's link target (symlink or hard link), checked: no NUL, at most [`MAX_PATH`].
fn link_target(m: &Member) -> Result<Option<Vec<u8>>> {
    match &m.link {
        Some(l) if l.contains(&0) => Err(Error::input("the link target contains a NUL byte")),
        Some(l) if l.len() > MAX_PATH => Err(Error::input(format!(
            "the link target is longer than {MAX_PATH} bytes"
        ))),
        other => Ok(other.clone()),
    }
}

/// Read a regular file's `size` bytes of data in chunks, each handed to `dispatch`; the
/// chunks' sequence numbers.
fn read_file_chunks<R: Read>(
    archive: &mut TarReader<R>,
    size: u64,
    opts: &ScanOptions,
    dispatch: &mut dyn FnMut(Vec<u8>) -> Result<u32>,
    buffers: &ChunkBuffers,
) -> Result<Vec<u32>> {
    if size.div_ceil(u64::from(opts.chunk_size)) > MAX_FILE_CHUNKS {
        return Err(Error::input(format!(
            "{size} bytes are more than {MAX_FILE_CHUNKS} chunks (use a larger chunk size)"
        )));
    }
    let mut chunks = Vec::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(u64::from(opts.chunk_size)) as usize;
        let mut buf = buffers.take(false);
        // A recycled buffer is already initialised: no zeroing when it shrinks.
        if buf.len() >= n {
            buf.truncate(n);
        } else {
            buf.resize(n, 0);
        }
        archive.read_data_exact(&mut buf)?;
        chunks.push(dispatch(buf)?);
        left -= n as u64;
    }
    Ok(chunks)
}

fn shown_byte(b: u8) -> String {
    crate::tar::read::shown(&[b])
}

/// A member name's components ([`components`]), which must also be something a filesystem
/// can hold: no NUL, names of at most [`MAX_NAME`] bytes, at most [`MAX_PATH`] in all, and
/// no whiteout of `.`, `..` or nothing.
pub fn member_components(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.contains(&0) {
        return Err(Error::input("the name contains a NUL byte"));
    }
    if raw.len() > MAX_PATH {
        return Err(Error::input(format!(
            "the name is longer than {MAX_PATH} bytes ({} bytes)",
            raw.len()
        )));
    }
    let comps = components(raw)?;
    for c in &comps {
        if c.len() > MAX_NAME {
            return Err(Error::input(format!(
                "a path component is longer than {MAX_NAME} bytes ({} bytes)",
                c.len()
            )));
        }
        whiteout::check_component(c)?;
    }
    Ok(comps)
}

fn parse_num(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let whole = s.split('.').next()?;
    whole.trim().parse().ok()
}

/// Path components of a member name: relative, no "..", "." and empty parts dropped.
pub fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    if raw.starts_with(b"/") {
        return Err(Error::input(
            "absolute member name: layer members must be relative to the image root",
        ));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(Error::input(
                    "member name contains '..' and would escape the image root",
                ))
            }
            name => out.push(name.to_vec()),
        }
    }
    Ok(out)
}

/// A FIFO in `dir` (tests of what must not be read as a blob).
#[cfg(test)]
pub(crate) fn make_fifo(dir: &Path) -> std::path::PathBuf {
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    fifo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened_as_blobs_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = make_fifo(t.path());
        let e = open_blob(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = open_blob(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = open_blob(t.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::write(t.path().join("f"), b"abc").unwrap();
        assert_eq!(open_blob(&t.path().join("f")).unwrap().1, 3);
    }

    #[test]
    fn member_names_a_filesystem_cannot_hold_are_refused() {
        let ok = member_components(b"./a//b/").unwrap();
        assert_eq!(ok, vec![b"a".to_vec(), b"b".to_vec()]);
        for (name, want) in [
            (&b"a\0b"[..], "NUL"),
            (b"d/.wh..", "whiteout of '.'"),
            (b".wh...", "whiteout of '..'"),
            (b"d/.wh.", "whiteout of ''"),
            (b"../x", "'..'"),
            (b"/etc", "absolute"),
        ] {
            let e = member_components(name).unwrap_err().to_string();
            assert!(e.contains(want), "{name:?}: {e}");
        }
        let deep = "d/".repeat(3000) + "f";
        let e = member_components(deep.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("longer than 4095 bytes"), "{e}");
        let e = member_components(&[b'n'; 256]).unwrap_err().to_string();
        assert!(e.contains("longer than 255 bytes"), "{e}");
        assert!(member_components(&[b'n'; 255]).is_ok());
        assert!(member_components(b"d/.wh..wh..opq").is_ok());
    }
}
