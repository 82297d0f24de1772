//! Files of a layout and of the cache, read as the Python push reads them: only regular
//! files (a FIFO or `/dev/zero` under a blob's name must not block or fill memory), opened
//! without blocking, checked on the opened descriptor, and read no further than a bound.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn open_regular(path: &Path) -> Option<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len()))
}

/// The content of a regular file of at most `limit` bytes (and exactly `size` if given).
pub fn read_regular(path: &Path, limit: u64, size: Option<u64>) -> Option<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    if len > limit || size.is_some_and(|s| s != len) {
        return None;
    }
    let mut data = Vec::with_capacity(usize::try_from(len).ok()?);
    file.take(len + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 == len).then_some(data)
}

/// Whether `path` is a regular file of exactly `size` bytes.
pub fn is_regular_of_size(path: &Path, size: u64) -> bool {
    open_regular(path).is_some_and(|(_, len)| len == size)
}

#[cfg(test)]
mod tests {
    use super::{is_regular_of_size, read_regular};
    use std::path::Path;

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
