//! The fuzz targets of `api/fuzz` run over their committed seed corpus, so that a change
//! breaking a target's invariants (or the target itself) shows under `cargo test`.

// The seed writers in it are used by `make_seeds` only.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

#[path = "../../domain/fuzz/src/seeds.rs"]
mod seeds;

fn each_seed(target: &str, check: fn(&[u8])) {
    seeds::each_seed(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn import_lines_seeds_keep_their_invariants() {
    each_seed("import_lines", checks::import_lines);
}

#[test]
fn append_body_seeds_keep_their_invariants() {
    each_seed("append_body", checks::append_body);
}
