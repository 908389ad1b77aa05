//! The literal index of `LIKE` / `ILIKE '%lit%'` shapes: the groups whose required literal
//! a row's text holds, found without evaluating every pattern (issue 24). The router's
//! `ordered` room files groups here; prefixes and exact patterns go to its range index as
//! text ranges instead.
//!
//! ```text
//! pattern ─▶ like_plan: Exact | Prefix | Infix | AnyText | NoLiteral
//! row text ─▶ [fold: ILIKE ⇒ fold_case = lower(col); f(col) LIKE ⇒ f] ─▶ per slot:
//!   Infix:   InfixIndex::matches ─▶ tiers (Aho–Corasick) + overlay (memmem) ─▶ groups
//!   ─▶ candidates ─▶ the residual (which keeps the LIKE)
//! ```
//!
//! The rule both sides keep: an index admits every text the pattern matches (no false
//! negative); the text is transformed exactly as the residual transforms it (see
//! [`crate::predicate::like_plan`]).
//!
//! Rooms:
//! - `infix`: [`InfixIndex`], required literals ⇒ groups, one scan per text per tier;
//! - `tiers`: its immutable automata and the pure policy of when tiers merge.

mod infix;
mod tiers;

pub use infix::{InfixIndex, OVERLAY_MAX};
pub use tiers::{DFA_MAX_BYTES, FANOUT, PREFILTER_MAX_LITERALS};
