//! `index_*` NIFs of an index's job events: who is subscribed (`LsmIndex.subscribe/3`), and
//! the messages the pool threads send them (`deliver`, called by the index's listener).

use lsm_index_core::{JobEvent, JobFailure, JobReport};
use rustler::env::OwnedEnv;
use rustler::types::LocalPid;
use rustler::{Atom, Encoder, Env, ResourceArc, Term};
use std::sync::{Arc, Mutex};

use crate::error::core_error;
use crate::index::IndexResource;

mod atoms {
    rustler::atoms! {
        ok,
        lsm_index,
        compaction_started,
        compaction_done,
        compaction_failed,
        panic,
    }
}

/// The events a subscriber asked for (`LsmIndex.subscribe/3`'s `:events`), as bits.
const DONE: u8 = 1;
const STARTED: u8 = 2;
const FAILED: u8 = 4;

/// Processes subscribed to an index's job events, each with the events it wants.
pub(crate) type Subscribers = Arc<Mutex<Vec<(LocalPid, u8)>>>;

/// Sends a job event to each subscriber of `to` that asked for its kind:
/// `{:lsm_index, :compaction_started, %{job, lane}}`, `{:lsm_index, :compaction_done, info}`
/// (`report_term`) or `{:lsm_index, :compaction_failed, %{job, lane, duration_us, error}}`
/// (`error`: `{kind, message}` as in `{:error, {kind, message}}` replies, or
/// `{:panic, message}`).
pub(crate) fn deliver(to: &Subscribers, event: &JobEvent<'_>) {
    let bit = match event {
        JobEvent::Started { .. } => STARTED,
        JobEvent::Done(_) => DONE,
        JobEvent::Failed { .. } => FAILED,
        _ => return,
    };
    let Ok(mut pids) = to.lock() else { return };
    if pids.iter().all(|(_, wants)| wants & bit == 0) {
        return;
    }
    let mut env = OwnedEnv::new();
    // a pid that is gone fails to receive: it is forgotten
    pids.retain(|(pid, wants)| {
        wants & bit == 0
            || env
                .send_and_clear(pid, |env| event_term(env, event))
                .is_ok()
    });
}

/// The message of one job event (see `deliver`).
fn event_term<'a>(env: Env<'a>, event: &JobEvent<'_>) -> Term<'a> {
    let (kind, info) = match event {
        JobEvent::Started { job, lane } => (
            atoms::compaction_started(),
            map_of(env, &[("job", *job), ("lane", u64::from(*lane))]),
        ),
        JobEvent::Done(report) => (atoms::compaction_done(), report_term(env, report)),
        JobEvent::Failed {
            job,
            lane,
            duration_us,
            failure,
        } => {
            let info = map_of(
                env,
                &[
                    ("job", *job),
                    ("lane", u64::from(*lane)),
                    ("duration_us", *duration_us),
                ],
            );
            let error = match failure {
                // `{:error, {kind, message}}` (or a bare `{:error, kind}`): the part after :error
                JobFailure::Error(e) => rustler::types::tuple::get_tuple(core_error(env, e))
                    .ok()
                    .and_then(|t| t.get(1).copied())
                    .unwrap_or_else(|| e.to_string().encode(env)),
                JobFailure::Panicked(what) => (atoms::panic(), what.as_str()).encode(env),
            };
            let key = Atom::from_str(env, "error").map(|a| a.encode(env));
            let info = key.and_then(|k| info.map_put(k, error)).unwrap_or(info);
            (atoms::compaction_failed(), info)
        }
        _ => unreachable!("deliver sends only the kinds above"),
    };
    (atoms::lsm_index(), kind, info).encode(env)
}

/// A job report as a map with atom keys.
pub(crate) fn report_term<'a>(env: Env<'a>, r: &JobReport) -> Term<'a> {
    map_of(
        env,
        &[
            ("job", r.job),
            ("lane", u64::from(r.lane)),
            ("flushes", u64::from(r.flushes)),
            ("merges", u64::from(r.merges)),
            ("keys_flushed", r.keys_flushed),
            ("keys_written", r.keys_written),
            ("bytes_written", r.bytes_written),
            ("segments", u64::from(r.segments)),
            ("duration_us", r.duration_us),
        ],
    )
}

/// A map of atom keys to integers.
fn map_of<'a>(env: Env<'a>, pairs: &[(&str, u64)]) -> Term<'a> {
    let mut map = Term::map_new(env);
    for &(k, v) in pairs {
        if let Ok(key) = Atom::from_str(env, k) {
            if let Ok(m) = map.map_put(key.encode(env), v.encode(env)) {
                map = m;
            }
        }
    }
    map
}

/// Delivers the job events `events` (a mask of `DONE`, `STARTED`, `FAILED`) to `pid`;
/// subscribing again adds events.
#[rustler::nif]
fn index_subscribe(r: ResourceArc<IndexResource>, pid: LocalPid, events: u8) -> Atom {
    if let Ok(mut pids) = r.subscribers.lock() {
        match pids.iter_mut().find(|(p, _)| p == &pid) {
            Some((_, wants)) => *wants |= events,
            None => pids.push((pid, events)),
        }
    }
    atoms::ok()
}

/// Stops deliveries to `pid`.
#[rustler::nif]
fn index_unsubscribe(r: ResourceArc<IndexResource>, pid: LocalPid) -> Atom {
    if let Ok(mut pids) = r.subscribers.lock() {
        pids.retain(|(p, _)| p != &pid);
    }
    atoms::ok()
}

/// How many processes `subscribe/2` delivers to now (tests: a subscriber that exited is
/// forgotten once a job finds it gone).
#[rustler::nif]
fn index_subscriber_count(r: ResourceArc<IndexResource>) -> usize {
    r.subscribers.lock().map_or(0, |pids| pids.len())
}
