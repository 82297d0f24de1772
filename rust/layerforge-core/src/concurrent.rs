//! Running `n` independent jobs (the layers of one image) on a few threads, results in job
//! order: the first failure cancels the jobs not yet started, and the most relevant error
//! of all that failed is reported; and the worker pool those jobs share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use crate::error::{most_relevant, Error};
use crate::progress::Progress;

/// `requested` threads, or one per core when 0, and a rayon pool of that many named
/// `<name>-<i>`.
pub fn worker_pool(
    requested: usize,
    name: &'static str,
) -> Result<(usize, rayon::ThreadPool), Error> {
    let threads = if requested > 0 {
        requested
    } else {
        thread::available_parallelism().map_or(1, |n| n.get())
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| Error::io("cannot start worker threads", std::io::Error::other(e)))?;
    Ok((threads, pool))
}

/// Run `work(0..n)` on `threads` threads. Returns the successful results in job order and,
/// if any job failed (or a worker panicked), the error to report; callers clean up what the
/// successful jobs wrote.
pub fn run_indexed<T: Send>(
    n: usize,
    threads: usize,
    progress: &Progress,
    work: impl Fn(usize) -> Result<T, Error> + Sync,
) -> (Vec<T>, Option<Error>) {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, Error>>>> = Mutex::new((0..n).map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = if progress.is_cancelled() {
                    Err(Error::Cancelled)
                } else {
                    work(i)
                };
                if r.is_err() {
                    progress.cancel();
                }
                if let Ok(mut guard) = results.lock() {
                    guard[i] = Some(r);
                }
            });
        }
    });
    let Ok(results) = results.into_inner() else {
        return (Vec::new(), Some(Error::Corrupt("worker panicked".into())));
    };
    let mut ok = Vec::with_capacity(n);
    let mut failure: Option<Error> = None;
    for r in results {
        match r {
            Some(Ok(v)) => ok.push(v),
            Some(Err(e)) => {
                failure = Some(match failure {
                    Some(f) => most_relevant(f, e),
                    None => e,
                })
            }
            None => failure = Some(failure.unwrap_or(Error::Corrupt("worker panicked".into()))),
        }
    }
    (ok, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_and_failures_reported() {
        let p = Progress::new();
        let (ok, err) = run_indexed(20, 3, &p, |i| Ok::<_, Error>(i * 2));
        assert!(err.is_none());
        assert_eq!(ok, (0..20).map(|i| i * 2).collect::<Vec<_>>());

        let p = Progress::new();
        let (_, err) = run_indexed(5, 2, &p, |i| {
            if i == 3 {
                Err(Error::input("job 3 failed"))
            } else {
                Ok(i)
            }
        });
        assert!(err.is_some_and(|e| e.to_string().contains("job 3 failed")));
        assert!(p.is_cancelled());
    }
}
