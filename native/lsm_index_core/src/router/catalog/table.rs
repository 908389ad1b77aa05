//! The table a catalog belongs to, as text: each column as `name\ttype` (the type as
//! `ColumnType::describe` writes it) and the case folding. The table record holds the
//! columns the table was made with (`name\ttype\n` each, then `\tcase_folding c\n` under
//! `LC_CTYPE=C`); each column record (version 2) one column appended since. A router's
//! columns fit a catalog when the catalog's columns — the table record's, then the column
//! records' — are the first of them (same names, types and folding): the rest are columns
//! added while the router was closed, recorded at open.

use crate::predicate::{CaseFolding, ColumnType};

/// A router's table as its catalog spells it (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table {
    /// Per column, in row order: `name\ttype`.
    lines: Vec<String>,
    /// The table record's last line: `\tcase_folding c\n`, or nothing for the default.
    folding: String,
}

impl Table {
    /// The table of `columns`, folding case as `folding` says.
    pub(crate) fn new(columns: &[(String, ColumnType)], folding: CaseFolding) -> Table {
        let folding = match folding {
            CaseFolding::Unicode => String::new(),
            other => format!("\tcase_folding {}\n", other.name()),
        };
        Table {
            lines: columns.iter().map(|(n, ty)| column_line(n, ty)).collect(),
            folding,
        }
    }

    /// How many columns it has.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Column `c`'s text (`name\ttype`).
    pub(crate) fn line(&self, c: usize) -> Option<&str> {
        self.lines.get(c).map(String::as_str)
    }

    /// The texts of columns `from..to`.
    pub(crate) fn lines(&self, from: usize, to: usize) -> &[String] {
        &self.lines[from.min(to)..to.min(self.lines.len())]
    }

    /// Appends column `line` (`name\ttype`).
    pub(crate) fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Keeps its first `n` columns.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.lines.truncate(n);
    }

    /// The table record of its first `k` columns: what version 1 wrote for a table of them.
    pub(crate) fn record(&self, k: usize) -> String {
        let mut text = String::new();
        for line in self.lines(0, k) {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&self.folding);
        text
    }

    /// The `k` for which `text` is [`Table::record`]`(k)`, if one is: the table record of a
    /// catalog this table fits (with `k` columns made, the first of these).
    pub(crate) fn prefix_of(&self, text: &str) -> Option<usize> {
        let mut rest = text;
        for (k, line) in self.lines.iter().enumerate() {
            // the folding line never reads as a column: no type is `case_folding c`
            if rest == self.folding {
                return Some(k);
            }
            rest = rest.strip_prefix(line.as_str())?.strip_prefix('\n')?;
        }
        (rest == self.folding).then_some(self.lines.len())
    }
}

/// A column's text in a catalog: `name\ttype`.
pub(crate) fn column_line(name: &str, ty: &ColumnType) -> String {
    format!("{name}\t{}", ty.describe())
}

/// The table record's text of a table with `columns` (all of them) folding as `folding`: a
/// router snapshot records it (the columns as of the snapshot).
pub(crate) fn table_text(columns: &[(String, ColumnType)], folding: CaseFolding) -> String {
    Table::new(columns, folding).record(columns.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(folding: CaseFolding) -> Table {
        let columns = [
            ("a".to_string(), ColumnType::Int8),
            ("b".to_string(), ColumnType::Text),
            ("c".to_string(), ColumnType::enumeration(["x", "y"])),
        ];
        Table::new(&columns, folding)
    }

    #[test]
    fn a_table_record_names_a_prefix_of_the_columns() {
        for folding in [CaseFolding::Unicode, CaseFolding::Ascii] {
            let t = table(folding);
            for k in 0..=3 {
                assert_eq!(t.prefix_of(&t.record(k)), Some(k), "{folding:?} {k}");
            }
            // another folding, another type, a column that is not there: no prefix
            let other = table(match folding {
                CaseFolding::Unicode => CaseFolding::Ascii,
                _ => CaseFolding::Unicode,
            });
            assert_eq!(t.prefix_of(&other.record(2)), None);
            assert_eq!(t.prefix_of(&t.record(2).replace("text", "int8")), None);
            assert_eq!(t.prefix_of(&format!("{}d\tint8\n", t.record(3))), None);
            assert_eq!(t.prefix_of("a\tint8"), None);
        }
        // version 1's text of a table, unchanged
        assert_eq!(
            table(CaseFolding::Ascii).record(2),
            "a\tint8\nb\ttext\n\tcase_folding c\n"
        );
    }
}
