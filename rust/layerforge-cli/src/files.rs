//! Files of a layout and of the cache, read as the Python push reads them: only regular
//! files (a FIFO or `/dev/zero` under a blob's name must not block or fill memory), opened
//! without blocking, checked on the opened descriptor, and read no further than a bound.
//! A cache file is read only when no one but this user could have written it (the rule of
//! python/layerforge/trust/cache_files.py).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

fn open_regular(path: &Path) -> Option<(File, Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}

/// The content of a regular file of at most `limit` bytes (and exactly `size` if given).
pub fn read_regular(path: &Path, limit: u64, size: Option<u64>) -> Option<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    read_open(file, meta.len(), limit, size)
}

fn read_open(file: File, len: u64, limit: u64, size: Option<u64>) -> Option<Vec<u8>> {
    if len > limit || size.is_some_and(|s| s != len) {
        return None;
    }
    let mut data = Vec::with_capacity(usize::try_from(len).ok()?);
    file.take(len + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 == len).then_some(data)
}

/// Whether `path` is a regular file of exactly `size` bytes.
pub fn is_regular_of_size(path: &Path, size: u64) -> bool {
    open_regular(path).is_some_and(|(_, meta)| meta.len() == size)
}

/// Whether nothing at all is at `path` (not even a dangling symlink).
pub fn is_absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Whether this user owns the file or directory and no one else (group, others) may write it.
fn private(meta: &Metadata) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o022 == 0
}

/// The content of the cache file `path`, below the cache directory `root`, read as
/// [`read_regular`] reads (at most `limit` bytes), when it, `root` and every directory between
/// them are private to this user (`root` first, so that no one else can swap what follows).
pub fn read_private(root: &Path, path: &Path, limit: u64) -> Option<Vec<u8>> {
    let below = path.strip_prefix(root).ok()?;
    let mut dir = root.to_path_buf();
    private(&std::fs::metadata(&dir).ok()?).then_some(())?;
    for part in below.parent()?.components() {
        dir.push(part);
        private(&std::fs::metadata(&dir).ok()?).then_some(())?;
    }
    let (file, meta) = open_regular(path)?;
    private(&meta).then_some(())?;
    read_open(file, meta.len(), limit, None)
}

/// Write `path` through a temporary file in its directory, synced, then renamed over it.
pub fn write_atomic(path: &Path, data: &[u8]) -> Option<()> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_str()?;
    let tmp = dir.join(format!(".{name}.{}.native.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::{is_absent, is_regular_of_size, read_private, read_regular};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    #[test]
    fn cache_files_only_where_no_one_else_can_write() {
        let root = tempfile::tempdir().expect("a scratch directory");
        let set_mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let dir = root.path().join("push-receipts");
        std::fs::create_dir(&dir).expect("mkdir");
        let file = dir.join("k.json");
        std::fs::write(&file, b"{}").expect("write");
        set_mode(root.path(), 0o700);
        set_mode(&dir, 0o700);
        set_mode(&file, 0o600);
        let read = || read_private(root.path(), &file, 10);
        assert_eq!(read().as_deref(), Some(&b"{}"[..]));
        for (path, mode) in [
            (root.path(), 0o770),
            (dir.as_path(), 0o707),
            (file.as_path(), 0o620),
        ] {
            let was = std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777;
            set_mode(path, mode);
            assert!(read().is_none(), "{} of mode {mode:o}", path.display());
            set_mode(path, was);
        }
        assert!(read().is_some());
        assert!(
            read_private(&dir, &root.path().join("k.json"), 10).is_none(),
            "not below the root"
        );
        assert!(
            read_private(root.path(), &file, 1).is_none(),
            "over the limit"
        );
    }

    #[test]
    fn only_regular_files_of_the_expected_size() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let file = dir.path().join("blob");
        std::fs::write(&file, b"12345").expect("write");
        assert_eq!(
            read_regular(&file, 10, Some(5)).as_deref(),
            Some(&b"12345"[..])
        );
        assert!(read_regular(&file, 4, None).is_none(), "over the limit");
        assert!(
            read_regular(&file, 10, Some(6)).is_none(),
            "not the descriptor's size"
        );
        assert!(is_regular_of_size(&file, 5) && !is_regular_of_size(&file, 4));
        assert!(!is_absent(&file) && is_absent(&file.with_extension("gone")));
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("no NUL");
        // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(
            read_regular(&fifo, 10, None).is_none(),
            "a FIFO is refused without blocking"
        );
        assert!(!is_regular_of_size(&fifo, 0));
        assert!(read_regular(Path::new("/dev/zero"), 10, None).is_none());
        assert!(read_regular(&dir.path().join("absent"), 10, None).is_none());
    }
}
