//! The calling thread's CPU time: how long a call really ran, excluding time the thread was
//! preempted or its virtual CPU stolen by the hypervisor (which wall-clock timings include).
#![allow(unsafe_code)]

use std::time::Duration;

/// CPU time consumed by the calling thread so far (zero where unsupported).
pub fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing
        // else, and on failure `ts` stays zeroed.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
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
}
