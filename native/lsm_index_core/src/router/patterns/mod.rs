//! The pattern index: the shapes a row's text may match through `LIKE` / `ILIKE`, found
//! without evaluating every pattern (issue 24, `plans/issue-24.md` §3). Standalone so far:
//! the router wires it in later.
//!
//! ```text
//! pattern ─▶ like_plan: Exact | Prefix | Infix | AnyText | NoLiteral (+ implied)
//! row text ─▶ [fold: ILIKE ⇒ fold_case = lower(col); f(col) LIKE ⇒ f] ─▶ per slot:
//!   Prefix:  PrefixLengths::prefixes_of ─▶ text[..ℓ] per length present ─▶ equality probes
//!   Infix:   InfixIndex::matches ─▶ tiers (Aho–Corasick) + overlay (memmem) ─▶ groups
//!   Exact / AnyText: the equality index / every non-NULL text
//!   ─▶ candidates ─▶ the residual, unless the plan is implied
//! ```
//!
//! The rule both sides keep: an index admits every text the pattern matches (no false
//! negative); the text is transformed exactly as the residual transforms it (see
//! [`crate::predicate::like_plan`]).
//!
//! Rooms:
//! - `infix`: [`InfixIndex`], required literals ⇒ groups, one scan per text per tier;
//! - `tiers`: its immutable automata and the pure policy of when tiers merge;
//! - `prefixes`: [`PrefixLengths`], the prefix lengths present in a prefix slot and the
//!   probe keys of a text.

mod infix;
mod prefixes;
mod tiers;

pub use infix::{InfixIndex, OVERLAY_MAX};
pub use prefixes::{PrefixLengths, MAX_PREFIX_BYTES};
pub use tiers::{DFA_MAX_BYTES, FANOUT, PREFILTER_MAX_LITERALS};
