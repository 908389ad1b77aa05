//! Does the machine itself charge milliseconds of "CPU" to a thread that does nothing? A
//! diagnostic for the NIF call timing's outliers (DESIGN.md, "Call timing outliers"); no
//! index code runs here.
//!
//! `cargo run --release -p lsm_index_core --example vm_stalls -- spin [SECONDS] [THREADS]`
//! spins reading clocks (default 30 s, one thread) and prints every step between two
//! readings — normally ~1 µs: two clock reads and a `getrusage` — in which the thread's CPU
//! time advanced by more than 1 ms, with its wall time, page faults, context switches and
//! CPUs, and its `CLOCK_MONOTONIC` start (ftrace's `mono` clock). Each step is also written
//! to `/sys/kernel/tracing/trace_marker` when that is writable.
//!
//! `... --example vm_stalls -- trace FILE [AT_US CPU]...` reads an ftrace text dump taken with
//! `trace_clock` `mono` and the `irq_vectors:local_timer_*`, `irq:*` and `sched:sched_switch`
//! events on, and prints each stretch over 4.5 ms in which a busy CPU recorded no event at
//! all — with a 250 Hz tick, a virtual CPU that was not running guest code — and what was
//! running; then, for each `AT_US CPU` pair (a call's start and CPU, as the stress test
//! prints them), the events on that CPU from 6 ms before to 20 ms after.

use lsm_index_core::internals::{current_cpu, monotonic, thread_cpu_time, thread_usage};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("spin") | None => {
            let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
            let threads = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            spin(Duration::from_secs(seconds), threads)
        }
        Some("trace") => {
            let file = args.get(1).expect("trace FILE [AT_US CPU]...");
            let calls: Vec<(f64, u32)> = args[2..]
                .chunks(2)
                .map(|p| {
                    let at: f64 = p[0].parse().expect("AT_US");
                    (
                        at / 1e6,
                        p.get(1).and_then(|c| c.parse().ok()).expect("CPU"),
                    )
                })
                .collect();
            trace(file, &calls)
        }
        Some(other) => panic!("unknown mode {other}: spin [SECONDS] [THREADS] | trace FILE"),
    }
}

fn spin(length: Duration, threads: usize) {
    println!(
        "spinning {} s on {threads} thread(s); load {}",
        length.as_secs(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let marker = std::fs::OpenOptions::new()
        .write(true)
        .open("/sys/kernel/tracing/trace_marker")
        .ok();
    let marker = std::sync::Mutex::new(marker);
    std::thread::scope(|s| {
        for t in 0..threads {
            let marker = &marker;
            s.spawn(move || {
                let end = Instant::now() + length;
                let (mut wall0, mut cpu0, mut use0, mut on0) = (
                    monotonic(),
                    thread_cpu_time(),
                    thread_usage(),
                    current_cpu(),
                );
                let (mut steps, mut over, mut max) = (0u64, 0u64, Duration::ZERO);
                while Instant::now() < end {
                    let (wall, cpu, usage, on) = (
                        monotonic(),
                        thread_cpu_time(),
                        thread_usage(),
                        current_cpu(),
                    );
                    let step = cpu.saturating_sub(cpu0);
                    steps += 1;
                    max = max.max(step);
                    if step > Duration::from_millis(1) {
                        over += 1;
                        let d = usage.since(&use0);
                        let line = format!(
                            "thread {t} at {} us: CPU {} us, wall {} us, faults {}/{}, \
                             switches {}/{}, CPUs {:?} -> {:?}",
                            wall0.as_micros(),
                            step.as_micros(),
                            wall.saturating_sub(wall0).as_micros(),
                            d.minor_faults,
                            d.major_faults,
                            d.voluntary_switches,
                            d.involuntary_switches,
                            on0,
                            on
                        );
                        println!("{line}");
                        if let Some(f) = marker.lock().unwrap().as_mut() {
                            let _ = writeln!(f, "vm_stalls {line}");
                        }
                    }
                    (wall0, cpu0, use0, on0) = (wall, cpu, usage, on);
                }
                println!(
                    "thread {t}: {steps} steps, {over} over 1 ms of CPU, max {} us",
                    max.as_micros()
                );
            });
        }
    });
}

/// One ftrace event: time (s), CPU, task, event name, the rest of the line.
struct Event<'a> {
    at: f64,
    cpu: u32,
    task: &'a str,
    name: &'a str,
    rest: &'a str,
}

/// `  task-pid  [cpu] flags  time: name: rest`
fn parse(line: &str) -> Option<Event<'_>> {
    let open = line.find(" [")?;
    let close = open + line[open..].find(']')?;
    let task = line[..open].trim();
    let task = task.rsplit_once('-').map_or(task, |(name, _)| name);
    let cpu = line[open + 2..close].parse().ok()?;
    let mut fields = line[close + 1..].split_whitespace();
    let _flags = fields.next()?;
    let at = fields.next()?.trim_end_matches(':').parse().ok()?;
    let after_time = line[close + 1..].find(": ")? + close + 3;
    let (name, rest) = line[after_time..].split_once(':')?;
    Some(Event {
        at,
        cpu,
        task,
        name,
        rest: rest.trim(),
    })
}

fn trace(file: &str, calls: &[(f64, u32)]) {
    let text = std::fs::read_to_string(file).expect("read the trace");
    let events: Vec<Event<'_>> = text.lines().filter_map(parse).collect();
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        println!("{file}: no events");
        return;
    };
    let span = last.at - first.at;
    // per CPU: the last event's time and the task running after it
    let mut state: BTreeMap<u32, (f64, String)> = BTreeMap::new();
    let mut stretches: Vec<(f64, u32, f64, String)> = Vec::new();
    for e in &events {
        if let Some((t, running)) = state.get(&e.cpu) {
            let gap = (e.at - t) * 1e3;
            if gap > 4.5 && !running.starts_with("swapper") && running != "<idle>" {
                stretches.push((gap, e.cpu, *t, running.clone()));
            }
        }
        let running = if e.name == "sched_switch" {
            e.rest
                .split("next_comm=")
                .nth(1)
                .and_then(|r| r.split(" next_pid=").next())
                .unwrap_or(e.task)
                .to_string()
        } else {
            state
                .get(&e.cpu)
                .map_or_else(|| e.task.to_string(), |(_, r)| r.clone())
        };
        state.insert(e.cpu, (e.at, running));
    }
    println!(
        "{file}: {span:.1} s traced; {} stretches over 4.5 ms without an event on a busy CPU \
         ({:.2} per s)",
        stretches.len(),
        stretches.len() as f64 / span.max(1e-9)
    );
    for (gap, cpu, from, running) in &stretches {
        println!("  CPU {cpu} from {from:.6}: {gap:.2} ms, running {running}");
    }
    for &(at, cpu) in calls {
        println!("events on CPU {cpu} around a call at {at:.6}:");
        for e in events
            .iter()
            .filter(|e| e.cpu == cpu && e.at >= at - 0.006 && e.at <= at + 0.020)
        {
            println!("  {:.6} {:16} {} {}", e.at, e.task, e.name, e.rest);
        }
    }
}
