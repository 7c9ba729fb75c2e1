//! The fuzz targets of `eventlog/fuzz` run over their committed seed corpus, so that a change
//! breaking a target's invariants (or the target itself) shows under `cargo test`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `eventlog/fuzz/corpus/<target>`.
fn each_seed(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a seed");
        check(&bytes);
        seen += 1;
    }
    assert!(seen > 0, "no seeds in {}", dir.display());
}

#[test]
fn record_seeds_keep_their_invariants() {
    each_seed("record", checks::record);
}

#[test]
fn chunk_seeds_keep_their_invariants() {
    each_seed("chunk", checks::chunk);
}
