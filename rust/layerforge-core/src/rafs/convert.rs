//! Converting an OCI image's layers into Nydus blobs and a merged RAFS v6 bootstrap.
//!
//! 1. Scan (layers concurrently; chunks of a layer digested and compressed on the pool):
//!    tar -> tree + new chunks in a scratch file, deduplicated inside the layer and against
//!    the chunk dictionary.
//! 2. Deduplicate against lower layers, in layer order: a chunk an earlier layer stores is
//!    referenced there instead of being stored again (when that saves at least 1/64 of the
//!    layer's bytes: below that, rewriting the blob without them costs more than it saves).
//!    Deterministic: it depends only on the layers, never on which scan finished first.
//! 3. Finish each blob (concurrently): the kept chunks (the scratch file as is, or copied
//!    without the dropped chunks), the blob meta and digests.
//! 4. In layer order (cheap, metadata only): the layer's bootstrap, which may name lower
//!    layers' blobs and so needs their ids, is appended with the ToC; the blob is renamed to
//!    its sha256. Then the merged bootstrap of the whole image.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::concurrent::{run_indexed, worker_pool, JobStop};

use super::algo::{Compressor, Digester};
use super::blob_table::{BlobEntry, FEATURE_INLINED_FS_META};
use super::blob_writer::{write_bootstrap_and_toc, write_meta, HashedWriter, MetaWritten};
use super::bootstrap::{build, BootstrapSpec, MAX_BLOBS, MAX_CHUNKS_PER_BLOB};
use super::chunk_table::ChunkInfo;
use super::merge::merge;
use super::reader::read_bootstrap;
use super::superblock::FLAG_EXPLICIT_UID_GID;
use super::tar_input::{
    components, open_blob, scan_layer, KnownChunks, LayerScan, ScanOptions, SeqRef,
};
use super::tree::Tree;
use super::{round_up, BLOCK_SIZE};
use crate::blob::{BlobStore, TempBlob};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::rules::{is_control, RuleError, Setting};

/// Chunks found in lower layers are referenced there (not stored again) when that removes at
/// least 1/64 of a layer's stored bytes.
const LOWER_DEDUP_MIN_FRACTION: u64 = 64;

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub chunk_size: u32,
    pub compressor: Compressor,
    pub digester: Digester,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Absolute paths whose inodes form the prefetch table of the merged bootstrap.
    pub prefetch: Vec<String>,
    /// Reference chunks that lower layers already store instead of storing them again.
    pub dedup_lower: bool,
}

#[derive(Debug, Clone)]
pub struct LayerInput {
    pub path: PathBuf,
    /// What the image says of the layer, checked while it is read: its descriptor's digest
    /// and size (of the blob as stored) and its config diff_id (of the uncompressed tar).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub diff_id: Option<Digest>,
    /// How errors name the layer ("layer 2 (sha256:...)").
    pub label: String,
}

/// Chunks of another image that new blobs may reference instead of storing them.
#[derive(Debug, Clone, Default)]
pub struct ChunkDict {
    /// Blob table entries (with their real ids).
    pub blobs: Vec<BlobEntry>,
    /// `blob` indexes `blobs`.
    pub chunks: Vec<ChunkInfo>,
}

impl ChunkDict {
    /// Load a bootstrap as a dictionary for images built with `chunk_size` and `digester`.
    /// [`ChunkDict::from_bootstrap`] of the bootstrap file at `path`. A file that does not
    /// parse as one is bad input (the wrong file was named), reported with its path.
    pub fn load(path: &Path, chunk_size: u32, digester: Digester) -> Result<Self> {
        // A regular file only (not a FIFO or a device that never ends), read to its size.
        let refused = |e: Error| match e {
            Error::Input(m) | Error::Corrupt(m) => Error::Rule(RuleError::text(
                Setting::ChunkDict,
                &path.to_string_lossy(),
                format!("is not a chunk dictionary for this conversion ({m})"),
            )),
            other => other,
        };
        let (file, size) = open_blob(path).map_err(refused)?;
        let mut data = Vec::new();
        file.take(size)
            .read_to_end(&mut data)
            .map_err(|e| Error::io_path("cannot read the chunk dictionary", path, e))?;
        Self::from_bootstrap(&data, chunk_size, digester).map_err(refused)
    }

    pub fn from_bootstrap(data: &[u8], chunk_size: u32, digester: Digester) -> Result<Self> {
        let info = read_bootstrap(data)?;
        if info.ext.chunk_size != chunk_size {
            return Err(Error::input(format!(
                "the dictionary uses chunk size {} but this conversion uses {chunk_size}",
                info.ext.chunk_size
            )));
        }
        if info.ext.digest_flags() != digester.super_flag() {
            return Err(Error::input(format!(
                "the dictionary was not built with the {} digester",
                digester.name()
            )));
        }
        for b in &info.blobs {
            let id = b.id_str();
            if id.len() != 64 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::input(format!(
                    "blob id '{id}' is not a sha256 hex digest (use a merged image bootstrap)"
                )));
            }
        }
        Ok(ChunkDict {
            blobs: info.blobs,
            chunks: info.chunks,
        })
    }

    fn known(&self) -> KnownChunks {
        let mut m = KnownChunks::new();
        for (i, c) in self.chunks.iter().enumerate() {
            m.entry((c.digest, c.uncompressed_size)).or_insert(i as u32);
        }
        m
    }
}

/// Where a blob of the merged blob table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobSource {
    /// The blob of the image's layer with this index.
    Layer(usize),
    /// Blob of the chunk dictionary with this index in [`ChunkDict::blobs`].
    Dict(usize),
}

/// How the trees of one conversion number blobs in their chunk records
/// ([`ChunkInfo::blob`]): the image's layers first, then the chunk dictionary's blobs. Only
/// this type turns one into the other; a bootstrap maps the numbers to its own blob table.
#[derive(Debug, Clone, Copy)]
struct BlobNumbers {
    layers: usize,
}

impl BlobNumbers {
    fn number(self, source: BlobSource) -> u32 {
        match source {
            BlobSource::Layer(i) => i as u32,
            BlobSource::Dict(d) => (self.layers + d) as u32,
        }
    }

    fn source(self, number: u32) -> BlobSource {
        let g = number as usize;
        if g < self.layers {
            BlobSource::Layer(g)
        } else {
            BlobSource::Dict(g - self.layers)
        }
    }
}

/// One blob of the merged blob table (= the image's blob layers, in order).
#[derive(Debug, Clone)]
pub struct ImageBlob {
    /// sha256 hex of the blob file.
    pub id: String,
    /// File size for blobs this conversion wrote.
    pub size: Option<u64>,
    pub source: BlobSource,
}

#[derive(Debug, Clone, Default)]
pub struct LayerReport {
    /// The layer's blob (absent when every chunk is stored elsewhere or it has no data).
    pub blob: Option<(Digest, u64)>,
    pub created: bool,
    pub chunks: usize,
    pub file_bytes: u64,
    /// Uncompressed bytes found again inside the layer, in lower layers, in the dictionary.
    pub dup_bytes: u64,
    pub lower_bytes: u64,
    pub dict_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ConvertResult {
    pub layers: Vec<LayerReport>,
    pub blobs: Vec<ImageBlob>,
    pub bootstrap: Vec<u8>,
    /// Compressed bytes of dictionary chunks the new blobs did not need to store.
    pub dict_saved_bytes: u64,
}

/// A layer blob written up to its bootstrap: the scratch file (closed, so that an image of
/// many layers does not hold a descriptor per layer), the hash of its bytes so far and their
/// count, and its meta.
struct Pending {
    tmp: TempBlob,
    hasher: Hasher,
    size: u64,
    meta: MetaWritten,
}

struct Finished {
    own: Vec<Option<ChunkInfo>>,
    out: Option<Pending>,
}

/// For each layer, for each of its stored chunks: the (layer, stored index) of the lower
/// layer's copy that replaces it, if any.
type LowerRefs = Vec<Vec<Option<(usize, u32)>>>;

pub fn convert(
    layers: &[LayerInput],
    store: &BlobStore,
    opts: &ConvertOptions,
    dict: Option<&ChunkDict>,
    progress: &Progress,
) -> Result<ConvertResult> {
    let (threads, pool) = worker_pool(opts.threads, "layerforge-nydus")?;
    let prefetch = normalize_prefetch(&opts.prefetch)?;
    for l in layers {
        let size = std::fs::metadata(&l.path)
            .map_err(|e| Error::io_path("cannot read", &l.path, e))?
            .len();
        progress.add_total(size);
    }
    let known = Arc::new(dict.map(ChunkDict::known).unwrap_or_default());
    let scan_opts = ScanOptions {
        chunk_size: opts.chunk_size,
        compressor: opts.compressor,
        digester: opts.digester,
        queue: 2 * threads + 2,
    };

    // 1. Scan.
    let mut scans = run_layers(layers.len(), threads, progress, |i, stop| {
        let l = &layers[i];
        let scan = scan_layer(
            &l.path, l.size, store, &scan_opts, &known, &pool, progress, stop,
        )
        .map_err(|e| labelled(e, &l.label))?;
        verify_layer(l, &scan)?;
        Ok(scan)
    })?;

    // 2. Lower-layer deduplication.
    let lower = lower_refs(&scans, opts.dedup_lower);

    // 3. Finish the blobs' data and meta.
    let finished: Vec<Result<Finished>> = pool.install(|| {
        scans
            .par_iter_mut()
            .enumerate()
            .map(|(i, s)| {
                finish_data(i, s, &lower[i], store, opts).map_err(|e| labelled(e, &layers[i].label))
            })
            .collect()
    });
    let finished: Vec<Finished> = finished.into_iter().collect::<Result<_>>()?;
    check_blob_count(&scans, &finished, dict)?;

    // 4. Bootstraps, in layer order, then the merged one. Blobs committed so far are
    // removed again if anything fails.
    let mut a = Assembly {
        layers,
        opts,
        prefetch: &prefetch,
        numbers: BlobNumbers {
            layers: scans.len(),
        },
        dict_blobs: dict.map_or(&[][..], |d| d.blobs.as_slice()),
        dict_chunks: dict.map_or(&[][..], |d| d.chunks.as_slice()),
        lower: &lower,
        finished,
        final_entry: vec![None; scans.len()],
        dict_used: HashSet::new(),
        committed: Vec::new(),
    };
    let result = a.bootstraps(&mut scans, progress);
    if result.is_err() {
        for d in &a.committed {
            let _ = store.remove(d);
        }
    }
    result
}

/// Step 2: which stored chunks of each layer a lower layer already stores, in layer order
/// (the first layer storing a chunk keeps it). A layer drops its copies only when that saves
/// at least 1/[`LOWER_DEDUP_MIN_FRACTION`] of its stored bytes.
fn lower_refs(scans: &[LayerScan], dedup_lower: bool) -> LowerRefs {
    let mut first: HashMap<([u8; 32], u32), (usize, u32)> = HashMap::new();
    let mut lower: LowerRefs = Vec::with_capacity(scans.len());
    for (i, s) in scans.iter().enumerate() {
        let mut l = vec![None; s.stored.len()];
        let (mut saved, mut total) = (0u64, 0u64);
        for (k, c) in s.stored.iter().enumerate() {
            total += u64::from(c.compressed_size);
            let key = (c.digest, c.uncompressed_size);
            match first.get(&key) {
                Some(&at) if dedup_lower => {
                    l[k] = Some(at);
                    saved += u64::from(c.compressed_size);
                }
                Some(_) => {}
                None => {
                    first.insert(key, (i, k as u32));
                }
            }
        }
        // Dropping chunks means rewriting the layer's blob without them; when that saves
        // almost nothing, the layer keeps its own copies and its blob is written in place.
        if saved.saturating_mul(LOWER_DEDUP_MIN_FRACTION) < total {
            l.iter_mut().for_each(|x| *x = None);
        }
        lower.push(l);
    }
    lower
}

/// Step 4's state: what the layers' bootstraps need from steps 1-3 and what they produce.
struct Assembly<'a> {
    layers: &'a [LayerInput],
    opts: &'a ConvertOptions,
    prefetch: &'a [Vec<Vec<u8>>],
    numbers: BlobNumbers,
    dict_blobs: &'a [BlobEntry],
    dict_chunks: &'a [ChunkInfo],
    lower: &'a LowerRefs,
    finished: Vec<Finished>,
    /// Blob-table entries of the layers' blobs once committed (real ids).
    final_entry: Vec<Option<BlobEntry>>,
    /// Dictionary chunks some layer references.
    dict_used: HashSet<u32>,
    /// Blobs renamed into the store by this conversion.
    committed: Vec<Digest>,
}

impl Assembly<'_> {
    fn bootstraps(
        &mut self,
        scans: &mut [LayerScan],
        progress: &Progress,
    ) -> Result<ConvertResult> {
        let n = scans.len();
        let mut trees: Vec<Tree> = Vec::with_capacity(n);
        let mut tables: Vec<Vec<u32>> = Vec::with_capacity(n);
        let mut reports: Vec<LayerReport> = Vec::with_capacity(n);
        for (i, scan) in scans.iter_mut().enumerate() {
            progress.check()?;
            let mut report = LayerReport {
                chunks: self.finished[i].own.iter().flatten().count(),
                file_bytes: scan.file_bytes,
                dup_bytes: scan.dup_bytes,
                ..LayerReport::default()
            };
            let arena = self.resolve_chunks(i, scan, &mut report)?;
            let mut tree = std::mem::take(&mut scan.tree);
            let order = blob_order(self.finished[i].out.is_some().then_some(i as u32), &arena);
            tree.chunks = arena;
            if let Some(pending) = self.finished[i].out.take() {
                self.commit_layer_blob(i, pending, &tree, &order, &mut report)?;
            }
            trees.push(tree);
            tables.push(order);
            reports.push(report);
        }
        self.merged(&trees, &tables, reports)
    }

    /// The chunk records of layer `i`'s file chunks, in stream order: its own, the lower
    /// layers' copies it references, and dictionary chunks.
    fn resolve_chunks(
        &mut self,
        i: usize,
        scan: &LayerScan,
        report: &mut LayerReport,
    ) -> Result<Vec<ChunkInfo>> {
        let mut arena = Vec::with_capacity(scan.seqs.len());
        for r in &scan.seqs {
            arena.push(match *r {
                SeqRef::Own(k) => match self.finished[i].own[k as usize] {
                    Some(c) => c,
                    None => {
                        let (j, idx) = self.lower[i][k as usize]
                            .ok_or_else(|| Error::Corrupt("lost chunk".into()))?;
                        report.lower_bytes += u64::from(scan.stored[k as usize].uncompressed_size);
                        self.finished[j].own[idx as usize]
                            .ok_or_else(|| Error::Corrupt("lost lower chunk".into()))?
                    }
                },
                SeqRef::Known(d) => {
                    self.dict_used.insert(d);
                    let mut c = *self
                        .dict_chunks
                        .get(d as usize)
                        .ok_or_else(|| Error::Corrupt(format!("lost dictionary chunk {d}")))?;
                    report.dict_bytes += u64::from(c.uncompressed_size);
                    c.blob = self.numbers.number(BlobSource::Dict(c.blob as usize));
                    c
                }
            });
        }
        Ok(arena)
    }

    /// Append layer `i`'s bootstrap (its blob table: `order`) and the ToC to its blob, and
    /// rename the blob to its digest.
    fn commit_layer_blob(
        &mut self,
        i: usize,
        pending: Pending,
        tree: &Tree,
        order: &[u32],
        report: &mut LayerReport,
    ) -> Result<()> {
        let Pending {
            tmp,
            hasher,
            size,
            meta,
        } = pending;
        let mut w = HashedWriter::resume(
            BufWriter::new(tmp.append()?),
            hasher,
            size,
            tmp.path().display().to_string(),
        );
        let own = self.numbers.number(BlobSource::Layer(i));
        let entries: Vec<BlobEntry> = order
            .iter()
            .map(|&g| {
                if g == own {
                    Ok(meta.entry.clone())
                } else {
                    self.entry_of(g)
                }
            })
            .collect::<Result<_>>()?;
        // Only the patterns this layer holds: the merged bootstrap checks the rest.
        let own_prefetch: Vec<Vec<Vec<u8>>> = self
            .prefetch
            .iter()
            .filter(|p| {
                let c: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
                tree.lookup(&c).is_some()
            })
            .cloned()
            .collect();
        let boot = build(&BootstrapSpec {
            tree,
            blobs: &entries,
            blob_index: &table_index(order),
            chunk_size: self.opts.chunk_size,
            flags: base_flags(self.opts),
            prefetch: &own_prefetch,
        })
        .map_err(|e| labelled(e, &self.layers[i].label))?;
        write_bootstrap_and_toc(&mut w, &boot, meta.toc)?;
        let (file, digest, size) = w.finish()?;
        drop(file);
        report.created = tmp.commit(&digest)?;
        if report.created {
            self.committed.push(digest);
        }
        let mut e = meta.entry;
        e.set_id(&digest.hex())?;
        e.features &= !FEATURE_INLINED_FS_META;
        self.final_entry[i] = Some(e);
        report.blob = Some((digest, size));
        Ok(())
    }

    /// The merged bootstrap: every layer's blobs, in layer order, each once.
    fn merged(
        &self,
        trees: &[Tree],
        tables: &[Vec<u32>],
        reports: Vec<LayerReport>,
    ) -> Result<ConvertResult> {
        let mut merged_order: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        for &g in tables.iter().flatten() {
            if seen.insert(g) {
                merged_order.push(g);
            }
        }
        let entries: Vec<BlobEntry> = merged_order
            .iter()
            .map(|&g| self.entry_of(g))
            .collect::<Result<_>>()?;
        let merged = merge(trees)?;
        let bootstrap = build(&BootstrapSpec {
            tree: &merged,
            blobs: &entries,
            blob_index: &table_index(&merged_order),
            chunk_size: self.opts.chunk_size,
            flags: base_flags(self.opts),
            prefetch: self.prefetch,
        })?;
        let blobs = merged_order
            .iter()
            .zip(&entries)
            .map(|(&g, e)| {
                let source = self.numbers.source(g);
                ImageBlob {
                    id: e.id_str(),
                    size: match source {
                        BlobSource::Layer(l) => reports[l].blob.map(|b| b.1),
                        BlobSource::Dict(_) => None,
                    },
                    source,
                }
            })
            .collect();
        let dict_saved_bytes = self
            .dict_used
            .iter()
            .filter_map(|&d| self.dict_chunks.get(d as usize))
            .map(|c| u64::from(c.compressed_size))
            .sum();
        Ok(ConvertResult {
            layers: reports,
            blobs,
            bootstrap,
            dict_saved_bytes,
        })
    }

    /// The blob-table entry of a lower layer's blob or a dictionary blob, as another
    /// bootstrap refers to it (real id, no inlined-meta feature).
    fn entry_of(&self, g: u32) -> Result<BlobEntry> {
        let e = match self.numbers.source(g) {
            BlobSource::Layer(l) => self.final_entry.get(l).cloned().flatten(),
            BlobSource::Dict(d) => self.dict_blobs.get(d).cloned(),
        };
        let mut e =
            e.ok_or_else(|| Error::Corrupt(format!("blob {g} referenced before it was written")))?;
        e.features &= !FEATURE_INLINED_FS_META;
        Ok(e)
    }
}

/// A layer bootstrap's blob table: its own blob first (if it has one), then the blobs its
/// chunks live in, in order of first use.
fn blob_order(own: Option<u32>, chunks: &[ChunkInfo]) -> Vec<u32> {
    let mut order: Vec<u32> = own.into_iter().collect();
    let mut seen: HashSet<u32> = order.iter().copied().collect();
    for c in chunks {
        if seen.insert(c.blob) {
            order.push(c.blob);
        }
    }
    order
}

/// Blob number -> index in a bootstrap's blob table `order`.
fn table_index(order: &[u32]) -> HashMap<u32, u32> {
    order
        .iter()
        .enumerate()
        .map(|(k, &g)| (g, k as u32))
        .collect()
}

/// Refuse, before any blob is committed, an image whose merged bootstrap would name more
/// blobs (own and dictionary ones) than RAFS v6 can address.
fn check_blob_count(
    scans: &[LayerScan],
    finished: &[Finished],
    dict: Option<&ChunkDict>,
) -> Result<()> {
    let own = finished.iter().filter(|f| f.out.is_some()).count();
    let dict_blobs: HashSet<u32> = match dict {
        Some(d) => scans
            .iter()
            .flat_map(|s| &s.seqs)
            .filter_map(|r| match *r {
                SeqRef::Known(k) => d.chunks.get(k as usize).map(|c| c.blob),
                SeqRef::Own(_) => None,
            })
            .collect(),
        None => HashSet::new(),
    };
    let total = own + dict_blobs.len();
    if total > MAX_BLOBS {
        return Err(Error::input(format!(
            "the image needs {total} Nydus blobs ({own} of its layers, {} of the chunk dictionary), \
             more than the {MAX_BLOBS} a RAFS v6 bootstrap can refer to",
            dict_blobs.len()
        )));
    }
    Ok(())
}

/// The blob read is the one the manifest names, and it holds the tar the config names.
fn verify_layer(l: &LayerInput, scan: &LayerScan) -> Result<()> {
    if let Some(want) = l.digest.filter(|w| *w != scan.digest) {
        return Err(Error::Corrupt(format!(
            "{}: the blob hashes to {}, not to its descriptor's digest {want}",
            l.label, scan.digest
        )));
    }
    if let Some(want) = l.diff_id.filter(|w| *w != scan.diff_id) {
        return Err(Error::Corrupt(format!(
            "{}: the uncompressed layer hashes to {}, but the config's diff_id is {want}",
            l.label, scan.diff_id
        )));
    }
    Ok(())
}

fn base_flags(opts: &ConvertOptions) -> u64 {
    opts.compressor.super_flag() | opts.digester.super_flag() | FLAG_EXPLICIT_UID_GID
}

/// Write the kept chunks (in place when nothing was dropped) and the blob meta.
fn finish_data(
    layer: usize,
    scan: &mut LayerScan,
    lower: &[Option<(usize, u32)>],
    store: &BlobStore,
    opts: &ConvertOptions,
) -> Result<Finished> {
    let kept: Vec<usize> = (0..scan.stored.len())
        .filter(|&k| lower[k].is_none())
        .collect();
    let mut own = vec![None; scan.stored.len()];
    let Some(data) = scan.data.take() else {
        return Err(Error::Corrupt("layer scratch data missing".into()));
    };
    if kept.is_empty() {
        return Ok(Finished { own, out: None });
    }
    if kept.len() > MAX_CHUNKS_PER_BLOB {
        return Err(Error::input(format!(
            "the layer has {} chunks, more than the {MAX_CHUNKS_PER_BLOB} a Nydus blob can hold \
             (use a larger chunk size)",
            kept.len()
        )));
    }
    let in_place = kept.len() == scan.stored.len();
    let (tmp, mut w, old) = if in_place {
        let what = data.path().display().to_string();
        let w = HashedWriter::resume(
            BufWriter::with_capacity(1 << 20, data.append()?),
            scan.data_hasher.clone(),
            scan.data_size,
            what,
        );
        (data, w, None)
    } else {
        let mut fresh = store.begin()?;
        let f = fresh.take_file()?;
        let what = fresh.path().display().to_string();
        let w = HashedWriter::new(BufWriter::with_capacity(1 << 20, f), what);
        // The old scratch file is removed when `data` drops at the end of this function.
        let reader =
            File::open(data.path()).map_err(|e| Error::io_path("cannot read", data.path(), e))?;
        (fresh, w, Some((data, reader)))
    };
    let mut uoff = 0u64;
    let mut chunks = Vec::with_capacity(kept.len());
    let mut buf = Vec::new();
    for (ci, &k) in kept.iter().enumerate() {
        let s = scan.stored[k];
        let coff = match old.as_ref() {
            None => s.offset,
            Some((_, f)) => {
                buf.resize(s.compressed_size as usize, 0);
                f.read_exact_at(&mut buf, s.offset)
                    .map_err(|e| Error::io("cannot read scratch file", e))?;
                let at = w.pos();
                w.write(&buf)?;
                at
            }
        };
        let c = ChunkInfo {
            digest: s.digest,
            blob: layer as u32,
            index: ci as u32,
            compressed_offset: coff,
            compressed_size: s.compressed_size,
            uncompressed_offset: uoff,
            uncompressed_size: s.uncompressed_size,
            compressed: s.compressed,
        };
        uoff += round_up(u64::from(s.uncompressed_size), BLOCK_SIZE);
        own[k] = Some(c);
        chunks.push(c);
    }
    let data_size = w.pos();
    let meta = write_meta(
        &mut w,
        &chunks,
        data_size,
        opts.compressor,
        opts.digester,
        opts.chunk_size,
    )?;
    let (file, hasher, size) = w.into_parts()?;
    drop(file);
    Ok(Finished {
        own,
        out: Some(Pending {
            tmp,
            hasher,
            size,
            meta,
        }),
    })
}

/// Prefetch patterns as path components: absolute, normalised, deduplicated, and without
/// those below another pattern (the parent already covers them).
fn normalize_prefetch(patterns: &[String]) -> Result<Vec<Vec<Vec<u8>>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    for p in patterns {
        out.push(check_prefetch(p)?);
    }
    out.sort();
    out.dedup();
    let all = out.clone();
    out.retain(|p| !all.iter().any(|q| q.len() < p.len() && p.starts_with(q)));
    Ok(out)
}

/// One prefetch path (`nydus.prefetch` of the option rules): absolute, no control
/// characters, no `..` component; its components.
pub fn check_prefetch(p: &str) -> Result<Vec<Vec<u8>>> {
    let refused = |rule: &str| Error::Rule(RuleError::text(Setting::Prefetch, p, rule));
    if !p.starts_with('/') {
        return Err(refused("is not an absolute path"));
    }
    if p.chars().any(is_control) {
        return Err(refused("has control characters"));
    }
    // Relative once the leading slashes are gone, so `..` is all `components` can refuse.
    components(p.trim_start_matches('/').as_bytes()).map_err(|_| refused("contains '..'"))
}

fn labelled(e: Error, label: &str) -> Error {
    match e {
        Error::Input(m) => Error::Input(format!("{label}: {m}")),
        Error::Corrupt(m) if !m.starts_with(label) => Error::Corrupt(format!("{label}: {m}")),
        other => other,
    }
}

/// Run `work(i)` for every layer, at most `threads` at a time; the first failure cancels
/// the rest and the most relevant error is returned.
fn run_layers<T: Send>(
    n: usize,
    threads: usize,
    progress: &Progress,
    work: impl Fn(usize, &JobStop<'_>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    match run_indexed(n, threads, progress, work) {
        (_, Some(e)) => Err(e),
        (ok, None) => Ok(ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_dict_that_is_not_a_regular_file_is_refused_not_read_forever() {
        let t = tempfile::tempdir().unwrap();
        let fifo = super::super::tar_input::make_fifo(t.path());
        for p in [fifo.as_path(), Path::new("/dev/zero")] {
            let e = ChunkDict::load(p, 1 << 20, Digester::Blake3)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("is not a chunk dictionary") && e.contains("not a regular file"),
                "{e}"
            );
            assert!(!e.contains("--"), "the core names no flag: {e}");
        }
        std::fs::write(t.path().join("short"), b"not a bootstrap").unwrap();
        let e = ChunkDict::load(&t.path().join("short"), 1 << 20, Digester::Blake3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is not a chunk dictionary") && e.contains("not a RAFS v6 bootstrap"),
            "{e}"
        );
    }
}
