//! The fuzz targets of `eventlog/fuzz` run over their committed seed corpus, so that a change
//! breaking a target's invariants (or the target itself) shows under `cargo test`.

#[path = "../fuzz/src/lib.rs"]
mod checks;

#[path = "../../domain/fuzz/src/seeds.rs"]
mod seeds;

fn each_seed(target: &str, check: fn(&[u8])) {
    seeds::each_seed(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn record_seeds_keep_their_invariants() {
    each_seed("record", checks::record);
}

#[test]
fn chunk_seeds_keep_their_invariants() {
    each_seed("chunk", checks::chunk);
}
