//! The clauses a router read lately, by their text. Shapes made from one template share
//! their clause's text and differ in their parameters, so the clause is read (lexed and
//! parsed into its syntax tree) once and typed per shape with its own values
//! ([`Syntax::lower`]): a parse without its grammar half. Only for a router whose columns
//! never move (the tree names them by position): a fixed-column router's, which only gain
//! columns at the end ([`super::Router::add_column`]); the clauses read against fewer
//! columns are dropped when the table gains one (a name may mean another thing now).

use crate::predicate::{CaseFolding, ColumnType, Syntax};
use crate::Result;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Clauses held at most, and their bytes of text at most (a syntax tree is a few times its
/// text): past either, all are dropped. A router of a few templates reads each once; one of
/// as many distinct clauses as shapes gains nothing and holds little.
const HELD: usize = 256;
const HELD_BYTES: usize = 1 << 20;

/// Clause text ⇒ its syntax, for one router's table.
#[derive(Default)]
pub(super) struct Clauses {
    read: Mutex<Read>,
}

/// The clauses held and the bytes of their text.
#[derive(Default)]
struct Read {
    syntax: HashMap<Box<str>, Arc<Syntax>, ahash::RandomState>,
    bytes: usize,
    /// How many columns the table had when they were read (it only gains columns: the
    /// count tells the tables apart).
    width: usize,
}

impl Clauses {
    /// The syntax of clause `sql` over `columns` (read now unless it was lately).
    pub(super) fn syntax(
        &self,
        sql: &str,
        columns: &[(String, ColumnType)],
        folding: CaseFolding,
    ) -> Result<Arc<Syntax>> {
        {
            let read = self.read.lock();
            if let Some(syntax) = read.syntax.get(sql).filter(|_| read.width == columns.len()) {
                return Ok(syntax.clone());
            }
        }
        let syntax = Arc::new(Syntax::read(sql, columns, folding)?);
        let mut read = self.read.lock();
        let full = read.syntax.len() >= HELD || read.bytes + sql.len() > HELD_BYTES;
        if full || read.width != columns.len() {
            read.syntax.clear();
            read.bytes = 0;
            read.width = columns.len();
        }
        if read.syntax.insert(sql.into(), syntax.clone()).is_none() {
            read.bytes += sql.len();
        }
        Ok(syntax)
    }
}
