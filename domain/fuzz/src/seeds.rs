//! Runs a fuzz target's checks over its committed seed corpus, for the regular tests
//! `<crate>/tests/fuzz_seeds.rs` of `domain`, `eventlog` and `api` (each includes this file).

use std::path::Path;

/// Runs `check` on every file of `<crate_dir>/fuzz/corpus/<target>`.
pub fn each_seed(crate_dir: &str, target: &str, check: fn(&[u8])) {
    let dir = Path::new(crate_dir).join("fuzz/corpus").join(target);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a seed");
        check(&bytes);
        seen += 1;
    }
    assert!(seen > 0, "no seeds in {}", dir.display());
}
