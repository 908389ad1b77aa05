//! A change's records routed: one change through a reader ([`Rows::route`]) or a batch of
//! them ([`route_rows`]), with a value that is not text told apart from the core's failures.

use super::{Bad, Keys, Reading, Record};
use lsm_index_core::router::{ChangeCells, Reader, Routes};
use lsm_index_core::Error;
use rustler::Term;
use smallvec::SmallVec;
/// A change's kind.
#[derive(Clone, Copy, Default)]
pub(super) enum Kind {
    #[default]
    Truncate,
    Insert,
    Delete,
    Update,
}

/// The records of a change ([`Keys::read_change`]), reused from change to change.
#[derive(Default)]
pub(crate) struct Rows<'a> {
    pub(super) kind: Kind,
    /// An insert's or delete's record, or an update's old and new ones.
    pub(super) records: [Record<'a>; 2],
}

/// Why a change was not routed.
pub(crate) enum Refused<'a> {
    /// A malformed change (a value that is not text, met by the route).
    Bad(Bad<'a>),
    /// A failure of the core.
    Failed(Error),
}

impl<'a> Rows<'a> {
    /// Routes the change taken last through `reader` into `out` (its cells read with `keys`,
    /// the reader's).
    pub(crate) fn route(
        &mut self,
        reader: &mut Reader<'_>,
        keys: &Keys<'a>,
        out: &mut Vec<u32>,
    ) -> Result<(), Refused<'a>> {
        let (mut bad_old, mut bad_new) = (None, None);
        let [old, new] = &mut self.records;
        let mut old = Reading {
            keys,
            record: old,
            bad: &mut bad_old,
        };
        let mut new = Reading {
            keys,
            record: new,
            bad: &mut bad_new,
        };
        let routed = reader.route_cells(self.kind.cells(&mut old, &mut new), out);
        routed.map_err(|e| refusal(e, [bad_old, bad_new]))
    }
}

impl Kind {
    /// The core's view of a change of this kind whose records read `old` and `new`.
    fn cells<'c, 'a>(
        self,
        old: &'c mut Reading<'_, 'a>,
        new: &'c mut Reading<'_, 'a>,
    ) -> ChangeCells<'c, 'a> {
        match self {
            Kind::Truncate => ChangeCells::Truncate,
            Kind::Insert => ChangeCells::Insert(old),
            Kind::Delete => ChangeCells::Delete(old),
            Kind::Update => ChangeCells::Update(old, new),
        }
    }
}

/// Why a route failed: the value that was not text when the core met one (`BadCell`), else
/// the core's error.
fn refusal<'a>(e: Error, [bad_old, bad_new]: [Option<(usize, Term<'a>)>; 2]) -> Refused<'a> {
    match (&e, bad_old.or(bad_new)) {
        (Error::BadCell { .. }, Some((c, value))) => Refused::Bad(Bad::Value(c, value)),
        _ => Refused::Failed(e),
    }
}

/// Routes the changes taken into `rows` (each by [`Keys::read_change`]) in one batch
/// (`Reader::route_batch_cells`: every change's probed cells read first, the rest of a
/// change's as its route asks), their answers appended to `routes`. On a failure: the index
/// in `rows` of the change it is in, and why (`routes` holds the changes before it).
pub(crate) fn route_rows<'a>(
    reader: &mut Reader<'_>,
    keys: &Keys<'a>,
    rows: &mut [Rows<'a>],
    routes: &mut Routes,
) -> Result<(), (usize, Refused<'a>)> {
    type Bads<'a> = [Option<(usize, Term<'a>)>; 2];
    let kinds: SmallVec<[Kind; 64]> = rows.iter().map(|r| r.kind).collect();
    let mut bads: SmallVec<[Bads<'a>; 64]> = smallvec::smallvec![[None, None]; rows.len()];
    let mut readings: Vec<[Reading<'_, 'a>; 2]> = rows
        .iter_mut()
        .zip(bads.iter_mut())
        .map(|(r, [bad_old, bad_new])| {
            let [old, new] = &mut r.records;
            [
                Reading {
                    keys,
                    record: old,
                    bad: bad_old,
                },
                Reading {
                    keys,
                    record: new,
                    bad: bad_new,
                },
            ]
        })
        .collect();
    let mut changes: Vec<ChangeCells<'_, 'a>> = readings
        .iter_mut()
        .zip(&kinds)
        .map(|([old, new], kind)| kind.cells(old, new))
        .collect();
    let before = routes.len();
    let routed = reader.route_batch_cells(&mut changes, routes);
    drop(changes);
    drop(readings);
    let Err(e) = routed else { return Ok(()) };
    let at = routes.len() - before;
    Err((at, refusal(e, bads.get(at).copied().unwrap_or_default())))
}
