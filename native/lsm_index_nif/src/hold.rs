//! A test hook: parks the compaction worker of one index (or of a router's shape index) so
//! that ExUnit tests can fill overlays and see writes wait or be refused deterministically —
//! the Elixir twin of `lsm_index_core/tests/background.rs`, whose listener parks the worker.
//!
//! `index_hold_compaction(index, pid)` / `router_hold_compaction(router, pid)` return a hold
//! (a resource). From then on, the pool thread that finishes a background job of that index
//! sends `{:lsm_index, :compaction_held, info}` (`info` as in `:compaction_done`) to `pid` and
//! parks until `hold_release(hold)` is called or the hold is garbage collected. Meant for an
//! index with a pool of its own (`compaction_threads: n`): a parked shared worker would stall
//! every index of the shared pool. Nothing here runs on a scheduler but the few lock
//! operations of setting and releasing.

use lsm_index_core::{JobEvent, JobReport, Listener};
use rustler::env::OwnedEnv;
use rustler::types::LocalPid;
use rustler::{Atom, Encoder, Env, Resource, ResourceArc, Term};
use std::sync::{Arc, Condvar, Mutex, Weak};

use crate::error::core_error;
use crate::index::IndexResource;
use crate::index_events::{deliver, report_term};
use crate::router::RouterResource;

mod atoms {
    rustler::atoms! {
        ok,
        lsm_index,
        compaction_held,
    }
}

/// Who is told when the worker parks; `None` once released.
struct Hold {
    holder: Mutex<Option<LocalPid>>,
    released: Condvar,
}

impl Hold {
    fn release(&self) {
        if let Ok(mut holder) = self.holder.lock() {
            *holder = None;
        }
        self.released.notify_all();
    }

    /// On the pool thread, after the report of a job: tells the holder and parks while held.
    fn park(&self, report: &JobReport) {
        let Ok(mut holder) = self.holder.lock() else {
            return;
        };
        let Some(pid) = *holder else { return };
        let _ = OwnedEnv::new().send_and_clear(&pid, |env| {
            (
                atoms::lsm_index(),
                atoms::compaction_held(),
                report_term(env, report),
            )
                .encode(env)
        });
        while holder.is_some() {
            holder = match self.released.wait(holder) {
                Ok(h) => h,
                Err(_) => return,
            };
        }
    }
}

/// A hold, as the test holds it; dropping it (the holder's process gone) releases it too.
pub struct HoldResource {
    hold: Arc<Hold>,
}

impl Drop for HoldResource {
    fn drop(&mut self) {
        self.hold.release();
    }
}

#[rustler::resource_impl]
impl Resource for HoldResource {}

/// A new hold telling `pid`, and the listener that parks on it after a finished job's
/// report, having first called `then` with every event (the index's own deliveries). The
/// listener keeps the hold weakly: once the resource is gone, jobs no longer park.
fn new_hold(
    pid: LocalPid,
    then: impl Fn(&JobEvent<'_>) + Send + Sync + 'static,
) -> (ResourceArc<HoldResource>, Listener) {
    let hold = Arc::new(Hold {
        holder: Mutex::new(Some(pid)),
        released: Condvar::new(),
    });
    let weak: Weak<Hold> = Arc::downgrade(&hold);
    let listener: Listener = Arc::new(move |event: &JobEvent<'_>| {
        then(event);
        if let (JobEvent::Done(report), Some(hold)) = (event, weak.upgrade()) {
            hold.park(report);
        }
    });
    (ResourceArc::new(HoldResource { hold }), listener)
}

/// Lets the parked worker (if any) go on; later jobs do not park.
#[rustler::nif]
fn hold_release(h: ResourceArc<HoldResource>) -> Atom {
    h.hold.release();
    atoms::ok()
}

/// Parks this index's compaction worker after each job, telling
/// `pid`, until the returned hold is released. Subscribers still get their reports first.
#[rustler::nif(schedule = "DirtyIo")]
fn index_hold_compaction(
    r: ResourceArc<IndexResource>,
    pid: LocalPid,
) -> ResourceArc<HoldResource> {
    let to = r.subscribers.clone();
    let (hold, listener) = new_hold(pid, move |event| deliver(&to, event));
    r.index.set_listener(Some(listener));
    hold
}

/// Parks the shape index's compaction worker after each job (the
/// index made now if no shape was indexed yet), telling `pid`, until the hold is released.
#[rustler::nif(schedule = "DirtyIo")]
fn router_hold_compaction(env: Env<'_>, r: ResourceArc<RouterResource>, pid: LocalPid) -> Term<'_> {
    let (hold, listener) = new_hold(pid, |_event| {});
    match r.router.set_index_listener(Some(listener)) {
        Ok(()) => (atoms::ok(), hold).encode(env),
        Err(e) => core_error(env, &e),
    }
}
