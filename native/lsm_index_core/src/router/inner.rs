//! View routers: for each table some subquery reads, a second router whose shapes are the
//! views' inner WHEREs (a view's number is its handle there), so an inner change finds the
//! views whose WHERE holds on its rows through the same presence → index → residual path as
//! a change finds outer shapes (`owner_id = 7` is found under the key 7, not scanned).
//!
//! Differences from an outer router: a view reads its projected columns too (they are in
//! its mask, so a row's value there is parsed and checked); a cell a view reads that does
//! not parse refuses the change (`Error::Unparseable`: counts cannot be kept from it); an
//! evaluation error counts the row as outside the view (PostgreSQL would fail the query).

use super::bits::set_bit;
use super::shapes::compiled_shape;
use super::views::ViewId;
use super::Router;
use crate::index::Config;
use crate::predicate::compile::compile;
use crate::predicate::{CaseFolding, ColumnType, Expr};
use crate::Result;

impl Router {
    /// An empty view router for a table with `columns`.
    pub(super) fn new_views(
        columns: Vec<(String, ColumnType)>,
        folding: CaseFolding,
        config: Config,
    ) -> Result<Router> {
        let mut router = Router::new(columns, folding, config)?;
        router.strict = true;
        Ok(router)
    }

    /// Adds view `view`: the rows where `inner` holds, read for their `projection` columns.
    pub(super) fn add_view(
        &self,
        view: ViewId,
        inner: &Expr,
        projection: &[usize],
        blocking: bool,
    ) -> Result<()> {
        self.check_open()?;
        let mut compiled = compile(inner);
        for &c in projection {
            if compiled.mask.len() <= c / 64 {
                compiled.mask.resize(c / 64 + 1, 0);
            }
            set_bit(&mut compiled.mask, c);
        }
        let (shape, keys) = compiled_shape(compiled, Box::default(), false);
        let w = self.lock_writer(blocking)?;
        self.publish(&w, view, shape, &keys, "", None, blocking)
    }

    /// Removes view `view`.
    pub(super) fn remove_view(&self, view: ViewId, blocking: bool) -> Result<()> {
        let w = self.lock_writer(blocking)?;
        self.remove_locked(&w, view, blocking).map(drop)
    }

    /// Adds outer shape `id` compiled from `expr`, its subqueries reading `views` (by
    /// position); `stale`: see `shapes::compiled_shape`.
    pub(super) fn add_with_views(
        &self,
        id: u32,
        expr: &Expr,
        views: Box<[ViewId]>,
        stale: bool,
        blocking: bool,
    ) -> Result<()> {
        self.check_open()?;
        let (shape, keys) = compiled_shape(compile(expr), views, stale);
        let w = self.lock_writer(blocking)?;
        self.publish(&w, id, shape, &keys, "", None, blocking)
    }
}
