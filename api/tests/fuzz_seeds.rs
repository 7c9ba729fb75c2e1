//! The fuzz targets of `api/fuzz` run over their committed seed corpus, so that a change
//! breaking a target's invariants (or the target itself) shows under `cargo test`.

// The seed writers in it are used by `make_seeds` only.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `api/fuzz/corpus/<target>`.
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
fn import_lines_seeds_keep_their_invariants() {
    each_seed("import_lines", checks::import_lines);
}

#[test]
fn append_body_seeds_keep_their_invariants() {
    each_seed("append_body", checks::append_body);
}
