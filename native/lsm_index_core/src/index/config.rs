//! How an index is configured: every option, its default and its valid range, in one place
//! (the NIF and the Elixir layer forward what their callers give and leave the rest here).

use crate::compaction::strategy::PolicyKind;
use crate::error::{Error, Result};
use crate::hash::HashSecret;
use crate::segment::SegmentLayout;
use crate::wal::SyncMode;

/// What a blocking write does when a lane's overlay is at `max_overlay_keys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    /// Wait until compaction has made room (the write is slowed, memory stays bounded).
    Wait,
    /// Fail with `Error::Overloaded`, writing nothing (Elixir: `overload: :error`).
    Error,
}

impl Overload {
    /// Its name (the Elixir option's value).
    pub fn name(self) -> &'static str {
        match self {
            Overload::Wait => "wait",
            Overload::Error => "error",
        }
    }

    /// The choice named `name` (as [`Overload::name`] spells it).
    pub fn from_name(name: &str) -> Option<Overload> {
        match name {
            "wait" => Some(Overload::Wait),
            "error" => Some(Overload::Error),
            _ => None,
        }
    }
}

/// How an index is laid out and when it compacts.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Lanes keys are spread over (1..=65536); default 64.
    pub lanes: u32,
    /// SegmentLayout of new segments; default the quotient table (format 2: the densest, DESIGN.md).
    pub layout: SegmentLayout,
    /// Whether new segments get a BinaryFuse8 prefilter; default on.
    pub prefilter: bool,
    /// Keys a lane's overlay holds before it is frozen and flushed; default 16384.
    pub overlay_limit: usize,
    /// Keys a lane's active overlay may reach while its frozen one is still being flushed;
    /// beyond it writers wait or are refused ([`Overload`]). `None`: 4 x `overlay_limit`.
    pub max_overlay_keys: Option<usize>,
    /// Compaction policy; default triangular (see `compaction::strategy`).
    pub policy: PolicyKind,
    /// Most segments per lane (read amplification bound); default 4.
    pub max_segments: usize,
    /// The policy's size ratio; `None` (default): the policy's own
    /// ([`PolicyKind::default_size_ratio`]: 1.25 triangular, 4.0 leveled).
    pub size_ratio: Option<f64>,
    /// Worker threads of a dedicated compaction pool; `None` (default): the process-wide
    /// pool shared by every index, `min(2, cores)` threads.
    pub compaction_threads: Option<usize>,
    /// What blocking writes do when compaction is behind; default `Wait`.
    pub on_overload: Overload,
    /// Key-hash secret; `None` draws a random one.
    pub secret: Option<HashSecret>,
    /// `Index::open` checks every section checksum of every segment file (reads all bytes);
    /// `false` checks headers, a format-1 MPH section and the manifest's record only. Default true.
    pub verify_on_open: bool,
    /// When the write-ahead log of a persistent index reaches the disk; default on `flush`.
    pub sync: SyncMode,
    /// Keep, for each handle, how many keys' sets hold it ([`Index::handle_count`],
    /// [`Index::distinct_handles`], [`Index::handles`]): exact through every write, drop and
    /// reopen (recounted at open), ~1 B a handle when handles are numbered densely; default
    /// off (a caller that knows its handles' keys pays nothing).
    ///
    /// [`Index::handle_count`]: super::Index::handle_count
    /// [`Index::distinct_handles`]: super::Index::distinct_handles
    /// [`Index::handles`]: super::Index::handles
    pub count_handles: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lanes: 64,
            layout: SegmentLayout::Quotient,
            prefilter: true,
            overlay_limit: 16_384,
            max_overlay_keys: None,
            policy: PolicyKind::Triangular,
            max_segments: 4,
            size_ratio: None,
            compaction_threads: None,
            on_overload: Overload::Wait,
            secret: None,
            verify_on_open: true,
            sync: SyncMode::Flush,
            count_handles: false,
        }
    }
}

impl Config {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        let bad = |option, reason: &str| {
            Err(Error::InvalidConfig {
                option,
                reason: reason.into(),
            })
        };
        if !(1..=65_536).contains(&self.lanes) {
            return bad("lanes", "must be between 1 and 65536");
        }
        if self.overlay_limit == 0 {
            return bad("overlay_limit", "must be at least 1");
        }
        if self
            .max_overlay_keys
            .is_some_and(|m| m < self.overlay_limit)
        {
            return bad("max_overlay_keys", "must be at least overlay_limit");
        }
        if self.max_segments == 0 {
            return bad("max_segments", "must be at least 1");
        }
        if self.size_ratio.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return bad("size_ratio", "must be a positive number");
        }
        if self
            .compaction_threads
            .is_some_and(|t| !(1..=256).contains(&t))
        {
            return bad("compaction_threads", "must be between 1 and 256");
        }
        Ok(())
    }

    /// The effective `max_overlay_keys`.
    pub fn stall_limit(&self) -> usize {
        self.max_overlay_keys
            .unwrap_or(self.overlay_limit.saturating_mul(4))
    }
}
