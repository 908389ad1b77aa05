//! `router_*` NIFs of a router's table columns (`LsmIndex.ShapeRouter.add_column/3`,
//! `columns/1`): a column appended (PostgreSQL's `ALTER TABLE … ADD COLUMN`, announced by a
//! Relation message), and the columns as they are now.
//!
//! Scheduling: `router_add_column` runs on a dirty I/O scheduler whatever the router — it
//! waits for the writer lock (a batch of shape adds may hold it) and a persistent router's
//! appends to its catalog (or rewrites a version-1 one); a column is added once per `ALTER`,
//! so no normal-scheduler attempt comes first. The readers take the state's read lock only,
//! as a route does.

use lsm_index_core::predicate::ColumnType;
use lsm_index_core::Error;
use rustler::{Atom, Encoder, Env, NifResult, ResourceArc, Term};

use crate::error::core_error;
use crate::predicate::column_type;
use crate::router::RouterResource;

mod atoms {
    rustler::atoms! {
        ok,
        error,
        column_type_conflict,
        enum_type = "enum",
        array,
    }
}

/// Appends column `name` of type `ty` (`new/4`'s native form) to the router's table: `:ok`
/// (also when it has that column with that type), `{:error, {:column_type_conflict, column,
/// type_there}}` for a column of that name and another type, else the error term of
/// `core_error` (`{:error, {:invalid_config, why}}`: a name or a type the table cannot take,
/// a router over several tables' own; `{:error, {:closed, _}}`; I/O). `BadArg` for a name that
/// is not UTF-8 text or a type that is no type.
#[rustler::nif(schedule = "DirtyIo")]
fn router_add_column<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    name: String,
    ty: Term<'a>,
) -> NifResult<Term<'a>> {
    let ty = column_type(ty)?;
    Ok(match r.router.add_column(&name, ty) {
        Ok(()) => atoms::ok().encode(env),
        Err(Error::ColumnTypeConflict { column, had, .. }) => {
            (atoms::error(), (atoms::column_type_conflict(), column, had)).encode(env)
        }
        Err(e) => core_error(env, &e),
    })
}

/// The table's columns now: `[{name, type}]`, a type as `LsmIndex.Filter.ColumnType` spells
/// it (`:int8`, `{:enum, "mood", labels}`, `{:enum, labels}`, `{:array, type}`; `varchar` is
/// `:text`, as the router reads it).
#[rustler::nif]
fn router_columns(env: Env<'_>, r: ResourceArc<RouterResource>) -> NifResult<Term<'_>> {
    let columns = r.router.columns();
    let mut list = Vec::with_capacity(columns.len());
    for (name, ty) in columns.iter() {
        list.push((name.as_str(), type_term(env, ty)?).encode(env));
    }
    Ok(list.encode(env))
}

/// How many columns the table has now (`pack_changes/2` packs rows that wide).
#[rustler::nif]
fn router_width(r: ResourceArc<RouterResource>) -> usize {
    r.router.columns().len()
}

/// `ty` in `LsmIndex.Filter.ColumnType`'s form.
fn type_term<'a>(env: Env<'a>, ty: &ColumnType) -> NifResult<Term<'a>> {
    Ok(match ty {
        ColumnType::Enum(e) => match &e.name {
            Some(name) => (atoms::enum_type(), name.as_str(), &e.labels).encode(env),
            None => (atoms::enum_type(), &e.labels).encode(env),
        },
        ColumnType::Array(element) => (atoms::array(), type_term(env, element)?).encode(env),
        other => Atom::from_str(env, &other.name())?.encode(env),
    })
}
