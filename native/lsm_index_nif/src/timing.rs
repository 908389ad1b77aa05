//! Opt-in timing of normal-scheduler NIF calls, for the stress test's "no scheduler blocked
//! for 1 ms" check. Off by default (one relaxed load per call). It counts calls whose thread
//! CPU time exceeded 1 ms — our code holding a normal scheduler — apart from calls that were
//! merely slow in wall time (preempted, or their virtual CPU stolen), which are reported too.

use rustler::{Atom, Encoder, Env, Term};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);
static CPU_OVER_1MS: AtomicU64 = AtomicU64::new(0);
static WALL_OVER_1MS: AtomicU64 = AtomicU64::new(0);
static MAX_CPU_US: AtomicU64 = AtomicU64::new(0);
static MAX_WALL_US: AtomicU64 = AtomicU64::new(0);

/// The timed NIFs, for the per-call maxima.
pub const NAMES: [&str; 13] = [
    "add",
    "remove",
    "add_many",
    "remove_many",
    "lookup",
    "lookup_many",
    "drop_handle",
    "router_add_shape",
    "router_route",
    "router_route_many",
    "filter_compile",
    "filter_row",
    "filter_eval",
];
static MAX_CPU_BY_NAME: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];

const LIMIT: Duration = Duration::from_millis(1);

/// Measures one call from its creation to its drop (when timing is on).
pub struct CallTimer(Option<(Instant, Duration, usize)>);

impl CallTimer {
    /// Starts timing the current call of NIF `NAMES[name]`.
    #[inline]
    pub fn start(name: usize) -> CallTimer {
        if !ON.load(Ordering::Relaxed) {
            return CallTimer(None);
        }
        CallTimer(Some((
            Instant::now(),
            lsm_index_core::internals::thread_cpu_time(),
            name,
        )))
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        let Some((wall0, cpu0, name)) = self.0 else {
            return;
        };
        let wall = wall0.elapsed();
        let cpu = lsm_index_core::internals::thread_cpu_time().saturating_sub(cpu0);
        CALLS.fetch_add(1, Ordering::Relaxed);
        if cpu > LIMIT {
            CPU_OVER_1MS.fetch_add(1, Ordering::Relaxed);
        }
        if wall > LIMIT {
            WALL_OVER_1MS.fetch_add(1, Ordering::Relaxed);
        }
        MAX_CPU_US.fetch_max(cpu.as_micros() as u64, Ordering::Relaxed);
        MAX_CPU_BY_NAME[name % NAMES.len()].fetch_max(cpu.as_micros() as u64, Ordering::Relaxed);
        MAX_WALL_US.fetch_max(wall.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Turns timing on (resetting the counters) or off.
#[rustler::nif]
fn timing_enable(on: bool) -> Atom {
    if on {
        for c in [
            &CALLS,
            &CPU_OVER_1MS,
            &WALL_OVER_1MS,
            &MAX_CPU_US,
            &MAX_WALL_US,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
    ON.store(on, Ordering::Relaxed);
    rustler::types::atom::ok()
}

/// The counters as a map.
#[rustler::nif]
fn timing_report(env: Env<'_>) -> Term<'_> {
    let pairs = [
        ("calls", &CALLS),
        ("cpu_over_1ms", &CPU_OVER_1MS),
        ("wall_over_1ms", &WALL_OVER_1MS),
        ("max_cpu_us", &MAX_CPU_US),
        ("max_wall_us", &MAX_WALL_US),
    ];
    let mut by_name = Term::map_new(env);
    for (name, max) in NAMES.iter().zip(&MAX_CPU_BY_NAME) {
        if let Ok(m) = by_name.map_put(name.encode(env), max.load(Ordering::Relaxed).encode(env)) {
            by_name = m;
        }
    }
    let mut map = Term::map_new(env);
    if let Ok(key) = Atom::from_str(env, "max_cpu_us_by_nif") {
        if let Ok(m) = map.map_put(key.encode(env), by_name) {
            map = m;
        }
    }
    for (k, v) in pairs {
        if let Ok(key) = Atom::from_str(env, k) {
            if let Ok(m) = map.map_put(key.encode(env), v.load(Ordering::Relaxed).encode(env)) {
                map = m;
            }
        }
    }
    map
}
