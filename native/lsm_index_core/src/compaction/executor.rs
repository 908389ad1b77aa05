//! Carries out compaction decisions: overlay -> segment (flush) and segments -> segment (merge).
//! Pure with respect to the index: takes snapshots, returns segment bytes, installs nothing.

use crate::dead::DeadHandles;
use crate::error::Result;
use crate::overlay::Overlay;
use crate::segment::{SegmentWriter, WriteOptions};
use crate::version::SegmentRef;
use std::sync::Arc;

/// What a flush or merge produced.
pub struct Built {
    /// The segment buffer, or `None` when nothing survived (all tombstones at the bottom).
    pub bytes: Option<Vec<u8>>,
}

fn finish(w: SegmentWriter) -> Result<Built> {
    let bytes = if w.is_empty() {
        None
    } else {
        Some(w.finish()?)
    };
    Ok(Built { bytes })
}

/// Builds a segment from a frozen overlay merged with `inputs`, the newest segments of its
/// lane (none for a plain flush): overlay entries shadow the segments' copies. `dead` is a
/// snapshot taken at `opts.clean_seq`; `bottom` says nothing older exists, so empty sets
/// (tombstones) can be left out.
pub fn flush(
    overlay: &Overlay,
    inputs: &[Arc<SegmentRef>],
    dead: &DeadHandles,
    bottom: bool,
    opts: WriteOptions,
) -> Result<Built> {
    let older: u64 = inputs.iter().map(|s| s.segment.info().key_count).sum();
    let mut w = SegmentWriter::with_capacity(opts, overlay.len() + older as usize);
    let mut buf = Vec::new();
    for (fp, e) in overlay.iter() {
        buf.clear();
        buf.extend_from_slice(&e.handles);
        dead.filter(&mut buf, 0, e.seq);
        if buf.is_empty() && bottom {
            continue;
        }
        w.push(fp, &buf)?;
    }
    if !inputs.is_empty() {
        merge_into(&mut w, inputs, |fp| overlay.get(fp).is_some(), dead, bottom)?;
    }
    finish(w)
}

/// Merges adjacent segments (newest first): the newest entry of each fingerprint wins,
/// handles dead for its segment are removed, and at the `bottom` empty sets are dropped.
pub fn merge(
    inputs: &[Arc<SegmentRef>],
    dead: &DeadHandles,
    bottom: bool,
    opts: WriteOptions,
) -> Result<Built> {
    let total: u64 = inputs.iter().map(|s| s.segment.info().key_count).sum();
    let mut w = SegmentWriter::with_capacity(opts, total as usize);
    merge_into(&mut w, inputs, |_| false, dead, bottom)?;
    finish(w)
}

/// Pushes the newest entry of each fingerprint of `inputs` (newest first) not `shadowed`,
/// with the handles dead for its segment removed (empty sets dropped at the `bottom`).
fn merge_into(
    w: &mut SegmentWriter,
    inputs: &[Arc<SegmentRef>],
    shadowed: impl Fn(u64) -> bool,
    dead: &DeadHandles,
    bottom: bool,
) -> Result<()> {
    for s in inputs {
        // a lazily opened input is read whole here: its damage is refused, not carried over
        s.segment.verify(&crate::manifest::segment_name(s.id))?;
    }
    let total: u64 = inputs.iter().map(|s| s.segment.info().key_count).sum();
    // (fingerprint, input rank, value word): sorting groups each key's versions, newest first.
    let mut items: Vec<(u64, u32, u32)> = Vec::with_capacity(total as usize);
    for (rank, s) in inputs.iter().enumerate() {
        items.extend(
            s.segment
                .entries()
                .filter(|&(fp, _)| !shadowed(fp))
                .map(|(fp, v)| (fp, rank as u32, v)),
        );
    }
    items.sort_unstable_by_key(|&(fp, rank, _)| (fp, rank));
    items.dedup_by_key(|&mut (fp, _, _)| fp);
    let mut buf = Vec::new();
    for (fp, rank, v) in items {
        let seg = &inputs[rank as usize].segment;
        buf.clear();
        seg.decode(v, &mut buf)?;
        dead.filter(&mut buf, 0, seg.info().clean_seq);
        if buf.is_empty() && bottom {
            continue;
        }
        w.push(fp, &buf)?;
    }
    Ok(())
}
