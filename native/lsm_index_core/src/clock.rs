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
    #[test]
    fn advances_with_work_not_with_sleep() {
        let start = super::thread_cpu_time();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = super::thread_cpu_time() - start;
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 30 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let worked = super::thread_cpu_time() - start - slept;
        assert!(slept.as_millis() < 10, "{slept:?}");
        assert!(worked.as_millis() >= 15, "{worked:?} ({x})");
    }
}
