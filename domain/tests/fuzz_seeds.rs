//! The fuzz targets of `domain/fuzz` run over their committed seed corpus, so that a change
//! breaking a target's invariants (or the target itself) shows under `cargo test`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[path = "../fuzz/src/seeds.rs"]
mod seeds;

fn each_seed(target: &str, check: fn(&[u8])) {
    seeds::each_seed(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn stored_data_seeds_keep_their_invariants() {
    each_seed("stored_data", checks::stored_data);
}
