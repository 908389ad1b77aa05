//! The compaction worker pool: OS threads taking jobs from a `crossbeam-channel` queue, so
//! segment builds never run on a writer's or reader's thread (a BEAM scheduler).
//!
//! Indexes share one process-wide pool of `min(2, cores)` threads by default (many small
//! tenant indexes cost no threads each); an index may have a dedicated pool instead. Workers
//! run at a lower CPU priority (nice +10) so that, on a busy machine, lookups keep their
//! cores and compaction takes the slack; back-pressure slows writers if it falls behind.
//! A job that panics is caught here (the worker survives); the index's job wrapper turns the
//! panic into a poisoned index.

use crossbeam_channel::{unbounded, Receiver, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A unit of background work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Nice value of worker threads: the lowest priority (see the module doc).
const WORKER_NICE: i32 = 19;

/// Time slice asked for worker threads (the kernel's minimum is 0.1 ms).
const WORKER_SLICE_NS: u64 = 100_000;

/// A fixed set of worker threads draining one job queue. Dropping the last handle closes
/// the queue; idle workers then exit (none is joined: a drop never waits for a build).
pub struct Workers {
    jobs: Sender<Job>,
    threads: usize,
}

impl Workers {
    /// Starts `threads` workers (at least one) named `lsm-compact-<i>`.
    pub fn new(threads: usize) -> std::io::Result<Arc<Workers>> {
        let threads = threads.max(1);
        let (tx, rx) = unbounded::<Job>();
        for i in 0..threads {
            let rx: Receiver<Job> = rx.clone();
            std::thread::Builder::new()
                .name(format!("lsm-compact-{i}"))
                .spawn(move || worker(rx))?;
        }
        Ok(Arc::new(Workers { jobs: tx, threads }))
    }

    /// The process-wide pool of `min(2, cores)` workers, started on first use.
    pub fn shared() -> std::io::Result<Arc<Workers>> {
        static SHARED: OnceLock<Arc<Workers>> = OnceLock::new();
        if let Some(p) = SHARED.get() {
            return Ok(p.clone());
        }
        let pool = Workers::new(default_threads())?;
        // a racing first call may have won: its pool is used, ours winds down when dropped
        Ok(SHARED.get_or_init(|| pool).clone())
    }

    /// Queues `job`; `false` if no worker can run it (every worker gone).
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

/// `min(2, cores)`: the default pool size.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(2)
}

/// Jobs running on any pool (their allocations' cache is released when none is left).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

fn worker(jobs: Receiver<Job>) {
    lower_priority();
    while let Ok(job) = jobs.recv() {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        // The index's wrapper reports panics (it poisons the index); this one only keeps
        // the worker alive for the other jobs.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        // the last job done and nothing queued: the blocks kept for the next job go back
        if RUNNING.fetch_sub(1, Ordering::SeqCst) == 1 && jobs.is_empty() {
            crate::alloc::release_cached();
        }
    }
}

/// Lowers the calling thread's CPU priority: nice [`WORKER_NICE`] and, on Linux 6.12+
/// (EEVDF custom slices), a [`WORKER_SLICE_NS`] time slice, so a worker that runs while a
/// BEAM scheduler thread waits for the CPU gives it back within that slice instead of a
/// default slice of milliseconds. Best effort: older kernels keep the nice value only.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let attr = libc::sched_attr {
            size: std::mem::size_of::<libc::sched_attr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: WORKER_NICE,
            sched_priority: 0,
            sched_runtime: WORKER_SLICE_NS,
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: `attr` is a valid, fully initialised `sched_attr` whose `size` field says
        // how much of it the kernel may read; pid 0 is the calling thread; the call only
        // changes scheduling parameters, which lowering needs no privilege for.
        let custom = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) };
        if custom != 0 {
            // SAFETY: `gettid` has no preconditions; `setpriority` only reads its integer
            // arguments, and raising one's own nice value needs no privilege.
            unsafe {
                let tid = libc::gettid();
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_and_survives_a_panic() {
        let pool = Workers::new(2).expect("pool");
        let (tx, rx) = mpsc::channel();
        assert!(pool.submit(Box::new(|| panic!("a failing job"))));
        for i in 0..10 {
            let tx = tx.clone();
            assert!(pool.submit(Box::new(move || tx.send(i).expect("send"))));
        }
        let mut got: Vec<i32> = (0..10).map(|_| rx.recv().expect("recv")).collect();
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
