//! The `lsm-index` binary against a real index directory.

use lsm_index_core::{Config, Index};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lsm-index"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn inspect_verify_and_dump_wal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let index = Index::open(
        dir.path(),
        Config {
            lanes: 2,
            overlay_limit: 50,
            ..Config::default()
        },
    )
    .unwrap();
    for i in 0..300u32 {
        index.add(&i.to_le_bytes(), i % 5).unwrap();
    }
    index.drop_handle(4).unwrap();
    index.flush().unwrap();
    // segments are written in the background: let the flushes land before inspecting
    index.wait_idle().unwrap();

    let (code, out) = run(&["inspect", d]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 lanes") && out.contains("B/key") && out.contains("L0"),
        "{out}"
    );

    let (code, out) = run(&["dump-wal", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" add ") && out.contains(" drop "), "{out}");

    let (code, out) = run(&["verify", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy"), "{out}");
    drop(index);

    // damage one segment file: verify says so and exits 1
    let seg = std::fs::read_dir(dir.path().join("segments/lane-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let (code, out) = run(&["verify", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DAMAGED"), "{out}");

    assert_eq!(run(&["verify"]).0, 2);
    assert_eq!(run(&["frobnicate", d]).0, 2);
    assert_eq!(run(&["inspect", "/nonexistent/dir"]).0, 1);
}
