//! Opt-in timing of normal-scheduler NIF calls, for the tests' "no scheduler held for 1 ms"
//! checks. Off by default (one relaxed load per call). Per NIF it counts calls, their thread
//! CPU time and the calls over 1 ms of it — our code holding a normal scheduler — apart from
//! calls merely slow in wall time (preempted, or their virtual CPU stolen).
//!
//! Thread CPU time is not only ours: on a VM it also counts time the virtual CPU lost
//! without the hypervisor reporting it as steal (DESIGN.md, "Call timing outliers"). So
//! every call over 1 ms is kept (the first `KEPT`) with what tells the two apart: its wall
//! time, when it started (`CLOCK_MONOTONIC`, to find it in an ftrace or perf capture), the
//! CPUs it started and ended on and, in `:detail` mode, its page faults and context
//! switches; and `timing_noop`, a NIF that does nothing but be timed, is the control: what
//! it shows under the same load is not ours.

use lsm_index_core::internals::ThreadUsage;
use lsm_index_core::internals::{current_cpu, monotonic, thread_cpu_time, thread_usage};
use rustler::{Atom, Encoder, Env, Term};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

rustler::atoms! { detail }

static ON: AtomicBool = AtomicBool::new(false);
static DETAIL: AtomicBool = AtomicBool::new(false);
static WALL_OVER_1MS: AtomicU64 = AtomicU64::new(0);
static MAX_WALL_US: AtomicU64 = AtomicU64::new(0);

/// The timed NIFs, indexed by the number each passes to `CallTimer::start`.
pub const NAMES: [&str; 19] = [
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
    "timing_noop",
    "router_set_add",
    "router_set_route",
    "router_set_route_many",
    "lookup_many_packed",
    "router_route_many_packed",
];
const NOOP: usize = 13;

/// Per-NIF counters.
struct Counters {
    calls: AtomicU64,
    cpu_over_1ms: AtomicU64,
    cpu_ns: AtomicU64,
    max_cpu_us: AtomicU64,
}

static BY_NIF: [Counters; NAMES.len()] = [const {
    Counters {
        calls: AtomicU64::new(0),
        cpu_over_1ms: AtomicU64::new(0),
        cpu_ns: AtomicU64::new(0),
        max_cpu_us: AtomicU64::new(0),
    }
}; NAMES.len()];

/// How many calls over 1 ms are kept in full.
const KEPT: usize = 100;

/// One call over 1 ms of CPU.
struct Outlier {
    name: usize,
    start: Duration,
    cpu: Duration,
    wall: Duration,
    cpus: (Option<u32>, Option<u32>),
    usage: Option<ThreadUsage>,
}

static OUTLIERS: Mutex<Vec<Outlier>> = Mutex::new(Vec::new());

const LIMIT: Duration = Duration::from_millis(1);

/// What a call's start was, to compare its end with.
struct Start {
    name: usize,
    wall: Duration,
    cpu: Duration,
    on: Option<u32>,
    usage: Option<ThreadUsage>,
}

/// Measures one call from its creation to its drop (when timing is on).
pub struct CallTimer(Option<Start>);

impl CallTimer {
    /// Starts timing the current call of NIF `NAMES[name]`.
    #[inline]
    pub fn start(name: usize) -> CallTimer {
        if !ON.load(Ordering::Relaxed) {
            return CallTimer(None);
        }
        let usage = DETAIL.load(Ordering::Relaxed).then(thread_usage);
        CallTimer(Some(Start {
            name: name % NAMES.len(),
            on: current_cpu(),
            wall: monotonic(),
            cpu: thread_cpu_time(),
            usage,
        }))
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        let Some(start) = self.0.take() else {
            return;
        };
        let cpu = thread_cpu_time().saturating_sub(start.cpu);
        let wall = monotonic().saturating_sub(start.wall);
        let counters = &BY_NIF[start.name];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .cpu_ns
            .fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
        counters
            .max_cpu_us
            .fetch_max(cpu.as_micros() as u64, Ordering::Relaxed);
        MAX_WALL_US.fetch_max(wall.as_micros() as u64, Ordering::Relaxed);
        if wall > LIMIT {
            WALL_OVER_1MS.fetch_add(1, Ordering::Relaxed);
        }
        if cpu > LIMIT {
            counters.cpu_over_1ms.fetch_add(1, Ordering::Relaxed);
            let usage = start.usage.map(|u| thread_usage().since(&u));
            let mut kept = OUTLIERS.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() < KEPT {
                kept.push(Outlier {
                    name: start.name,
                    start: start.wall,
                    cpu,
                    wall,
                    cpus: (start.on, current_cpu()),
                    usage,
                });
            }
        }
    }
}

/// Turns timing on (resetting the counters): `true`, or `:detail` to also read each call's
/// page faults and context switches (two more system calls per call); `false` turns it off.
#[rustler::nif]
fn timing_enable(mode: Atom) -> Atom {
    let on = mode != rustler::types::atom::false_();
    if on {
        for c in &BY_NIF {
            for v in [&c.calls, &c.cpu_over_1ms, &c.cpu_ns, &c.max_cpu_us] {
                v.store(0, Ordering::Relaxed);
            }
        }
        WALL_OVER_1MS.store(0, Ordering::Relaxed);
        MAX_WALL_US.store(0, Ordering::Relaxed);
        OUTLIERS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    DETAIL.store(mode == detail(), Ordering::Relaxed);
    ON.store(on, Ordering::Relaxed);
    rustler::types::atom::ok()
}

/// Does nothing — `spins` turns of an empty loop (no memory, no lock, no system call; 10,000
/// at most) — timed like the others: the control they are compared with (diagnostic only).
#[rustler::nif]
fn timing_noop(spins: u32) -> Atom {
    let _timer = CallTimer::start(NOOP);
    for i in 0..spins.min(10_000) {
        std::hint::black_box(i);
    }
    rustler::types::atom::ok()
}

/// The counters as a map: totals over the timed NIFs except `timing_noop` (`calls`,
/// `cpu_over_1ms`, `max_cpu_us`), `wall_over_1ms` and `max_wall_us` over all, `by_nif`
/// (name => `calls`, `cpu_over_1ms`, `cpu_us`, `max_cpu_us`; called ones only) and
/// `outliers`: the first calls over 1 ms of CPU, oldest first.
#[rustler::nif]
fn timing_report(env: Env<'_>) -> Term<'_> {
    let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
    let (mut calls, mut over, mut max) = (0, 0, 0);
    let mut by_nif = Vec::new();
    for (i, (name, c)) in NAMES.iter().zip(&BY_NIF).enumerate() {
        if load(&c.calls) == 0 {
            continue;
        }
        if i != NOOP {
            calls += load(&c.calls);
            over += load(&c.cpu_over_1ms);
            max = max.max(load(&c.max_cpu_us));
        }
        let counts = map(
            env,
            &[
                ("calls", load(&c.calls).encode(env)),
                ("cpu_over_1ms", load(&c.cpu_over_1ms).encode(env)),
                ("cpu_us", (load(&c.cpu_ns) / 1_000).encode(env)),
                ("max_cpu_us", load(&c.max_cpu_us).encode(env)),
            ],
        );
        by_nif.push((name.encode(env), counts));
    }
    let by_nif = Term::map_from_pairs(env, &by_nif).unwrap_or_else(|_| Term::map_new(env));
    let outliers: Vec<Term<'_>> = OUTLIERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|o| outlier(env, o))
        .collect();
    map(
        env,
        &[
            ("calls", calls.encode(env)),
            ("cpu_over_1ms", over.encode(env)),
            ("max_cpu_us", max.encode(env)),
            ("wall_over_1ms", load(&WALL_OVER_1MS).encode(env)),
            ("max_wall_us", load(&MAX_WALL_US).encode(env)),
            ("by_nif", by_nif),
            ("outliers", outliers.encode(env)),
        ],
    )
}

fn outlier<'a>(env: Env<'a>, o: &Outlier) -> Term<'a> {
    let usage = |f: fn(&ThreadUsage) -> u64| o.usage.as_ref().map(f).encode(env);
    map(
        env,
        &[
            ("nif", NAMES[o.name].encode(env)),
            ("start_us", (o.start.as_micros() as u64).encode(env)),
            ("cpu_us", (o.cpu.as_micros() as u64).encode(env)),
            ("wall_us", (o.wall.as_micros() as u64).encode(env)),
            ("cpus", (o.cpus.0, o.cpus.1).encode(env)),
            ("minor_faults", usage(|u| u.minor_faults)),
            ("major_faults", usage(|u| u.major_faults)),
            ("voluntary_switches", usage(|u| u.voluntary_switches)),
            ("involuntary_switches", usage(|u| u.involuntary_switches)),
        ],
    )
}

/// A map with atom keys (empty if the VM refuses one).
fn map<'a>(env: Env<'a>, pairs: &[(&str, Term<'a>)]) -> Term<'a> {
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        if let Ok(key) = Atom::from_str(env, k) {
            if let Ok(m) = map.map_put(key, *v) {
                map = m;
            }
        }
    }
    map
}
