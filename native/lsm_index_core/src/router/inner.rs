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
use super::shapes::slot;
use super::views::ViewId;
use super::Router;
use crate::index::Config;
use crate::key::{column_key, ColumnKey};
use crate::predicate::compile::{compile, compile_preferring_views, Compiled};
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
        let form = compiled_shape(compiled, Box::default(), false);
        let w = self.lock_writer(blocking)?;
        self.publish(&w, view, form, "", None, blocking)
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
        let compiled = self.choose_plan(expr, &views)?;
        let form = compiled_shape(compiled, views, stale);
        let w = self.lock_writer(blocking)?;
        self.publish(&w, id, form, "", None, blocking)
    }

    /// The plan of an outer shape: by an equality (`compile`'s choice), unless a subquery's
    /// view would find it among fewer shapes — an equality on a value many shapes share
    /// (`status = 'open'` in every user's shape) makes each of them a candidate of every row
    /// with that value, while each user's view finds only that user's shapes. Shapes already
    /// filed under the equality's keys are compared with those found through the view.
    fn choose_plan(&self, expr: &Expr, views: &[ViewId]) -> Result<Compiled> {
        let by_key = compile(expr);
        if by_key.index.is_empty() || views.is_empty() {
            return Ok(by_key);
        }
        let by_view = compile_preferring_views(expr);
        let Some(plan) = by_view.views.first() else {
            return Ok(by_key);
        };
        let Some(&view) = views.get(plan.position as usize) else {
            return Ok(by_key);
        };
        let through_view = self.state.read().view_slots.planned(view, &plan.columns) + 1;
        let mut under_keys = 0;
        if let Some(index) = self.shape_index() {
            let mut key = ColumnKey::new();
            let mut found = Vec::new();
            for p in &by_key.index {
                for v in &p.keys {
                    column_key(slot(p.column, p.func, p.element), v, &mut key);
                    found.clear();
                    index.lookup_into(&key, &mut found)?;
                    under_keys += found.len();
                }
            }
        }
        Ok(if under_keys > through_view {
            by_view
        } else {
            by_key
        })
    }
}
