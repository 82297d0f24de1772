//! Content-addressed blob store with atomic writes.
//!
//! A blob is written to a temporary file in a scratch directory on the same filesystem
//! and renamed to `<blob_dir>/<hex>` only once its digest is known, so a file under a
//! digest name always holds exactly that content, even if the process is killed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of scratch files; `<prefix><pid>-...` lets a later run remove a dead run's leftovers.
pub const TEMP_PREFIX: &str = "blob-";

#[derive(Debug, Clone)]
pub struct BlobStore {
    blob_dir: PathBuf,
    tmp_dir: PathBuf,
}

impl BlobStore {
    /// `blob_dir` is e.g. `LAYOUT/blobs/sha256`; `tmp_dir` must be on the same filesystem.
    pub fn open(blob_dir: impl Into<PathBuf>, tmp_dir: impl Into<PathBuf>) -> Result<Self> {
        let s = BlobStore {
            blob_dir: blob_dir.into(),
            tmp_dir: tmp_dir.into(),
        };
        for d in [&s.blob_dir, &s.tmp_dir] {
            fs::create_dir_all(d).map_err(|e| Error::io_path("cannot create directory", d, e))?;
        }
        Ok(s)
    }

    pub fn blob_dir(&self) -> &Path {
        &self.blob_dir
    }

    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.blob_dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path_of(digest).is_file()
    }

    /// Start a new blob.
    pub fn begin(&self) -> Result<TempBlob> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{TEMP_PREFIX}{}-{}-{nanos:08x}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.tmp_dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io_path("cannot create", &path, e))?;
        Ok(TempBlob {
            path,
            file: Some(file),
            blob_dir: self.blob_dir.clone(),
        })
    }

    /// Store a small in-memory blob (configs, manifests).
    pub fn put(&self, data: &[u8]) -> Result<(Digest, bool)> {
        let digest = Digest::of(data);
        if self.contains(&digest) {
            return Ok((digest, false));
        }
        let mut t = self.begin()?;
        t.file()?
            .write_all(data)
            .ctx(|| format!("cannot write '{}'", t.path.display()))?;
        let created = t.commit(&digest)?;
        Ok((digest, created))
    }

    /// Remove a blob this run created (rollback after a failed multi-layer build).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let p = self.path_of(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io_path("cannot remove", &p, e)),
        }
    }
}

/// A blob being written. Dropped without [`TempBlob::commit`], its scratch file is removed.
#[derive(Debug)]
pub struct TempBlob {
    path: PathBuf,
    file: Option<File>,
    blob_dir: PathBuf,
}

impl TempBlob {
    pub fn file(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| Error::input("blob already committed"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hand the open scratch file over (the blob keeps only its name, and is still removed
    /// when dropped uncommitted), so that many blobs in progress need not hold a descriptor.
    pub fn take_file(&mut self) -> Result<File> {
        self.file
            .take()
            .ok_or_else(|| Error::input("blob file already handed over"))
    }

    /// The scratch file opened again for appending (after [`TempBlob::take_file`]).
    pub fn append(&self) -> Result<File> {
        OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io_path("cannot reopen", &self.path, e))
    }

    /// Rename into place under its digest. Returns whether the blob is new to the store
    /// (false when an identical blob was already there).
    pub fn commit(mut self, digest: &Digest) -> Result<bool> {
        if let Some(f) = self.file.take() {
            drop(f);
        }
        let dest = self.blob_dir.join(digest.hex());
        let existed = dest.is_file();
        fs::rename(&self.path, &dest).map_err(|e| {
            Error::io(
                format!(
                    "cannot move '{}' to '{}'",
                    self.path.display(),
                    dest.display()
                ),
                e,
            )
        })?;
        self.path = PathBuf::new();
        Ok(!existed)
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_leaves_no_scratch() {
        let t = tempfile::tempdir().unwrap();
        let store = BlobStore::open(t.path().join("blobs/sha256"), t.path().join("tmp")).unwrap();
        let (d, created) = store.put(b"hello").unwrap();
        assert!(created);
        assert_eq!(fs::read(store.path_of(&d)).unwrap(), b"hello");
        let (_, again) = store.put(b"hello").unwrap();
        assert!(!again);
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_blob_without_an_open_file_is_appended_to_committed_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let store = BlobStore::open(t.path().join("b"), t.path().join("tmp")).unwrap();
        let mut b = store.begin().unwrap();
        b.take_file().unwrap().write_all(b"he").unwrap();
        assert!(b.take_file().is_err());
        b.append().unwrap().write_all(b"llo").unwrap();
        let d = Digest::of(b"hello");
        assert!(b.commit(&d).unwrap());
        assert_eq!(fs::read(store.path_of(&d)).unwrap(), b"hello");
        let mut gone = store.begin().unwrap();
        drop(gone.take_file().unwrap());
        let p = gone.path().to_path_buf();
        drop(gone);
        assert!(!p.exists());
    }

    #[test]
    fn dropped_blob_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let store = BlobStore::open(t.path().join("b"), t.path().join("tmp")).unwrap();
        let mut b = store.begin().unwrap();
        b.file().unwrap().write_all(b"partial").unwrap();
        let p = b.path().to_path_buf();
        assert!(p.exists());
        drop(b);
        assert!(!p.exists());
        assert_eq!(fs::read_dir(t.path().join("b")).unwrap().count(), 0);
    }
}
