//! Running `n` independent jobs (the layers of one image) on a few threads, results in job
//! order: the first failure cancels the jobs not yet started, and the most relevant error
//! of all that failed is reported; and the worker pool those jobs share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use crate::error::{most_relevant, Error};
use crate::progress::Progress;

/// The most worker threads a caller may ask for; more is refused as a bad value.
pub const MAX_THREADS: usize = 256;
/// Threads beyond this many per core only cost memory and switches: requests are capped there.
const THREADS_PER_CORE: usize = 4;

/// How many threads `requested` means on a machine with `cores` cores: one per core when 0,
/// else `requested` capped at `THREADS_PER_CORE` per core; more than [`MAX_THREADS`] is an
/// error (the caller names the option).
pub fn thread_count(requested: usize, cores: usize) -> Result<usize, Error> {
    if requested > MAX_THREADS {
        return Err(Error::input(format!(
            "threads: {requested} is more than {MAX_THREADS} (0 means one per core)"
        )));
    }
    let cores = cores.max(1);
    Ok(match requested {
        0 => cores,
        n => n.min(cores * THREADS_PER_CORE),
    })
}

/// [`thread_count`] threads for `requested` on this machine, and a rayon pool of that many
/// named `<name>-<i>`.
pub fn worker_pool(
    requested: usize,
    name: &'static str,
) -> Result<(usize, rayon::ThreadPool), Error> {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = thread_count(requested, cores)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| Error::io("cannot start worker threads", std::io::Error::other(e)))?;
    Ok((threads, pool))
}

/// What a job of [`run_indexed`] checks to stop early: the run was cancelled, or a job
/// numbered lower failed (its error is the one reported, whatever this job would find).
pub struct JobStop<'a> {
    index: usize,
    first_failed: &'a AtomicUsize,
    progress: &'a Progress,
}

impl JobStop<'_> {
    pub fn check(&self) -> Result<(), Error> {
        self.progress.check()?;
        if self.first_failed.load(Ordering::Relaxed) < self.index {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
}

/// Run `work(0..n)` on `threads` threads. Returns the successful results in job order and,
/// if any job failed (or a worker panicked), the error to report; callers clean up what the
/// successful jobs wrote.
///
/// The error reported is the one of the lowest-numbered job that fails, so it does not
/// depend on timing or the thread count: a failure stops the jobs numbered above it (their
/// [`JobStop`]) but lets those below finish; once none is left below, the whole run is
/// cancelled.
pub fn run_indexed<T: Send>(
    n: usize,
    threads: usize,
    progress: &Progress,
    work: impl Fn(usize, &JobStop<'_>) -> Result<T, Error> + Sync,
) -> (Vec<T>, Option<Error>) {
    let next = AtomicUsize::new(0);
    let first_failed = AtomicUsize::new(usize::MAX);
    let results: Mutex<Vec<Option<Result<T, Error>>>> = Mutex::new((0..n).map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let stop = JobStop {
                    index: i,
                    first_failed: &first_failed,
                    progress,
                };
                let r = match stop.check() {
                    Err(e) => Err(e),
                    Ok(()) => work(i, &stop),
                };
                if matches!(&r, Err(e) if !matches!(e, Error::Cancelled)) {
                    first_failed.fetch_min(i, Ordering::Relaxed);
                }
                if let Ok(mut guard) = results.lock() {
                    guard[i] = Some(r);
                    let f = first_failed.load(Ordering::Relaxed);
                    if f < n && guard[..f].iter().all(Option::is_some) {
                        progress.cancel();
                    }
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
            // The lowest-numbered real error wins; a later one only over a lesser one.
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
    fn thread_counts_are_capped_and_absurd_ones_refused() {
        assert_eq!(thread_count(0, 2).unwrap(), 2);
        assert_eq!(thread_count(3, 2).unwrap(), 3);
        assert_eq!(thread_count(200, 2).unwrap(), 8);
        assert_eq!(thread_count(256, 64).unwrap(), 256);
        assert_eq!(thread_count(1, 0).unwrap(), 1);
        let e = thread_count(100_000, 2).unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{e}");
        assert!(e.to_string().contains("100000 is more than 256"), "{e}");
        assert!(worker_pool(100_000, "t").is_err());
        let (n, pool) = worker_pool(MAX_THREADS, "t").unwrap();
        assert!(n <= MAX_THREADS && pool.current_num_threads() == n);
    }

    #[test]
    fn results_in_order_and_failures_reported() {
        let p = Progress::new();
        let (ok, err) = run_indexed(20, 3, &p, |i, _| Ok::<_, Error>(i * 2));
        assert!(err.is_none());
        assert_eq!(ok, (0..20).map(|i| i * 2).collect::<Vec<_>>());

        let p = Progress::new();
        let (_, err) = run_indexed(5, 2, &p, |i, _| {
            if i == 3 {
                Err(Error::input("job 3 failed"))
            } else {
                Ok(i)
            }
        });
        assert!(err.is_some_and(|e| e.to_string().contains("job 3 failed")));
        assert!(p.is_cancelled());
    }

    #[test]
    fn the_lowest_failing_job_is_reported_whatever_fails_first() {
        use std::sync::atomic::AtomicBool;
        for threads in [2, 3, 4] {
            let p = Progress::new();
            let three_failed = AtomicBool::new(false);
            let (ok, err) = run_indexed(6, threads, &p, |i, stop| match i {
                1 => {
                    // Job 3 fails while this one still works: this one is not stopped.
                    for _ in 0..10_000 {
                        if three_failed.load(Ordering::SeqCst) {
                            break;
                        }
                        thread::sleep(std::time::Duration::from_millis(1));
                    }
                    stop.check()?;
                    Err(Error::input("job 1 failed"))
                }
                3 => {
                    three_failed.store(true, Ordering::SeqCst);
                    Err(Error::input("job 3 failed"))
                }
                _ => Ok(i),
            });
            let e = err.map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some("job 1 failed"), "threads={threads}");
            assert!(ok.contains(&0));
            assert!(p.is_cancelled());
        }
    }
}
