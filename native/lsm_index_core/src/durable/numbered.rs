//! Numbered files: `<prefix><number as 16 hex digits><suffix>` (manifests by generation, log
//! files by first sequence number), listed in number order.

use super::io_error;
use crate::error::{FileKind, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// The file name of `number` (16 lower-case hex digits between `prefix` and `suffix`).
pub fn numbered_name(prefix: &str, number: u64, suffix: &str) -> String {
    format!("{prefix}{number:016x}{suffix}")
}

/// Every file of `dir` named `<prefix><hex number><suffix>`, with its number, sorted.
pub fn numbered_files(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(u64, PathBuf)>> {
    let list = |e: &std::io::Error| io_error(FileKind::Directory, dir, "list", e);
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| list(&e))? {
        let entry = entry.map_err(|e| list(&e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if let Some(n) = number {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_matching_names_in_number_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0x20u64, 3, 0x1_0000_0000] {
            fs::write(dir.path().join(numbered_name("wal-", n, ".log")), b"").unwrap();
        }
        fs::write(dir.path().join("wal-xyz.log"), b"").unwrap();
        fs::write(dir.path().join("MANIFEST-0000000000000001.json"), b"").unwrap();
        let found: Vec<u64> = numbered_files(dir.path(), "wal-", ".log")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(found, vec![3, 0x20, 0x1_0000_0000]);
        assert_eq!(
            numbered_name("wal-", 0x38f, ".log"),
            "wal-000000000000038f.log"
        );
    }
}
