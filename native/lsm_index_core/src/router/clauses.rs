//! The clauses a router read lately, by their text. Shapes made from one template share
//! their clause's text and differ in their parameters, so the clause is read (lexed and
//! parsed into its syntax tree) once and typed per shape with its own values
//! ([`Syntax::lower`]): a parse without its grammar half. Only for a router whose columns
//! never change (the tree names them by position).

use crate::predicate::{CaseFolding, ColumnType, Syntax};
use crate::Result;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Clauses held at most (then all are dropped): a router of many templates keeps reading,
/// one of as many distinct clauses as shapes gains nothing and holds little.
const HELD: usize = 256;

/// Clause text ⇒ its syntax, for one router's table.
#[derive(Default)]
pub(super) struct Clauses {
    read: Mutex<HashMap<Box<str>, Arc<Syntax>, ahash::RandomState>>,
}

impl Clauses {
    /// The syntax of clause `sql` over `columns` (read now unless it was lately).
    pub(super) fn syntax(
        &self,
        sql: &str,
        columns: &[(String, ColumnType)],
        folding: CaseFolding,
    ) -> Result<Arc<Syntax>> {
        if let Some(syntax) = self.read.lock().get(sql) {
            return Ok(syntax.clone());
        }
        let syntax = Arc::new(Syntax::read(sql, columns, folding)?);
        let mut read = self.read.lock();
        if read.len() >= HELD {
            read.clear();
        }
        read.insert(sql.into(), syntax.clone());
        Ok(syntax)
    }
}
