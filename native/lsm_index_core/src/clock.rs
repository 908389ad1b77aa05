//! The calling thread's clocks and counters, for the NIF's call timing.
//!
//! `thread_cpu_time` excludes time the thread was preempted and the steal time the
//! hypervisor reports, but not time the virtual CPU lost without reporting it: on the
//! nested (PVM) VM this project is measured on, a thread that only reads clocks sees steps
//! of 2–30 ms "CPU" with no fault, interrupt or context switch (DESIGN.md, "Call timing
//! outliers"). `thread_usage` (faults, context switches), `monotonic` (comparable with
//! ftrace's `mono` clock) and `current_cpu` let a caller tell those apart from its own work.
#![allow(unsafe_code)]

use std::time::Duration;

/// The calling thread's fault and context-switch counts (`getrusage(RUSAGE_THREAD)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    /// Page faults served without I/O.
    pub minor_faults: u64,
    /// Page faults that waited for I/O.
    pub major_faults: u64,
    /// Times the thread gave up its CPU (waited: a lock, I/O, a sleep).
    pub voluntary_switches: u64,
    /// Times the thread was preempted.
    pub involuntary_switches: u64,
}

impl ThreadUsage {
    /// The counts from `earlier` to `self`.
    pub fn since(&self, earlier: &ThreadUsage) -> ThreadUsage {
        ThreadUsage {
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }
}

/// The calling thread's counts so far (all zero where unsupported).
pub fn thread_usage() -> ThreadUsage {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage; RUSAGE_THREAD reads the calling thread's
        // counters and nothing else; on failure `ru` stays zeroed.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } == 0 {
            return ThreadUsage {
                minor_faults: ru.ru_minflt as u64,
                major_faults: ru.ru_majflt as u64,
                voluntary_switches: ru.ru_nvcsw as u64,
                involuntary_switches: ru.ru_nivcsw as u64,
            };
        }
    }
    ThreadUsage::default()
}

/// `CLOCK_MONOTONIC` since boot (zero where unsupported): unlike `Instant`, comparable with
/// other processes' readings, ftrace's `mono` clock and `perf` timestamps.
pub fn monotonic() -> Duration {
    clock(libc::CLOCK_MONOTONIC)
}

/// The CPU the calling thread runs on (`None` where unknown).
pub fn current_cpu() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getcpu` takes nothing and only reads the thread's CPU number.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 {
            return Some(cpu as u32);
        }
    }
    None
}

/// CPU time consumed by the calling thread so far (zero where unsupported).
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock ids used here need nothing
        // else, and on failure `ts` stays zeroed.
        let rc = unsafe { libc::clock_gettime(id, &mut ts) };
        if rc == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// Sleeping costs no CPU time, and working advances it; no wall-time bound on the work
    /// (a loaded machine may take long to give this thread 20 ms of CPU).
    #[test]
    fn advances_with_work_not_with_sleep() {
        let start = super::thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let slept = super::thread_cpu_time() - start;
        assert!(slept < Duration::from_millis(30), "{slept:?}");
        let before = super::thread_cpu_time();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut x = 0u64;
        while super::thread_cpu_time() - before < Duration::from_millis(20) {
            assert!(
                Instant::now() < deadline,
                "no CPU time counted for a busy loop ({x})"
            );
            for _ in 0..10_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
    }

    /// Touching fresh pages counts minor faults; the clocks and the CPU number answer.
    #[cfg(target_os = "linux")]
    #[test]
    fn counts_faults_and_reads_the_clocks() {
        let before = super::thread_usage();
        let mut pages = vec![0u8; 64 << 20];
        for i in (0..pages.len()).step_by(4096) {
            pages[i] = 1;
        }
        std::hint::black_box(&pages);
        let faults = super::thread_usage().since(&before).minor_faults;
        // at least one: transparent huge pages may serve 2 MiB per fault
        assert!(faults >= 1, "no minor fault for 64 MiB of fresh pages");
        let t = super::monotonic();
        assert!(t > Duration::ZERO && super::monotonic() >= t);
        assert!(super::current_cpu().is_some());
    }
}
