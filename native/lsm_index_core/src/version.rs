//! A lane's immutable list of segments; readers use it while compaction builds the next.

use crate::compaction::strategy::{LaneShape, SegmentShape};
use crate::segment::{Segment, SegmentBytes};
use std::sync::Arc;

/// A segment with its index-wide id (its file name once segments persist).
pub struct SegmentRef {
    /// Unique within an index, increasing with creation.
    pub id: u64,
    /// The open segment.
    pub segment: Segment<SegmentBytes>,
}

/// The segments of one lane, newest first. Never mutated: compaction installs a new one.
#[derive(Default, Clone)]
pub struct Version {
    /// Newest first: a key's first hit shadows every older one.
    pub segments: Vec<Arc<SegmentRef>>,
}

impl Version {
    /// This version with `segments[start..start + count]` replaced by `merged` (if any); with
    /// `count == 0`, `merged` is inserted at `start` (a flush: `start == 0`).
    pub fn with_merged(
        &self,
        start: usize,
        count: usize,
        merged: Option<Arc<SegmentRef>>,
    ) -> Version {
        let mut segments = self.segments.clone();
        segments.splice(start..start + count, merged);
        Version { segments }
    }

    /// What a compaction policy sees of this version, with a frozen overlay of `flush` keys
    /// waiting (if any).
    pub fn shape(&self, flush: Option<u64>) -> LaneShape {
        LaneShape {
            flush,
            segments: self
                .segments
                .iter()
                .map(|s| SegmentShape {
                    level: s.segment.info().level,
                    keys: s.segment.info().key_count,
                })
                .collect(),
        }
    }

    /// The oldest clean seq of its segments (see `DeadHandles`).
    pub fn min_clean_seq(&self) -> Option<u64> {
        self.segments
            .iter()
            .map(|s| s.segment.info().clean_seq)
            .min()
    }
}
