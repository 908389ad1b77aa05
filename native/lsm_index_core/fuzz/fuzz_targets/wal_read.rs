//! Any bytes as a log file are read frame by frame to an error or a list of records: never a
//! panic (the read-only path; recovery's repairing path shares the decoder).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("lsm_wal_fuzz_{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    });
    let path = dir.join(lsm_index_core::wal::file_name(1));
    std::fs::write(&path, data).expect("write");
    let _ = lsm_index_core::wal::read(dir, |_, _| Ok(()));
});
