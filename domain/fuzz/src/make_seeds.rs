//! Writes the seed corpus of the `stored_data` target from the recorded log
//! `replay-tests/logs/v1-small.ndjson`: for each event, its type's selector byte and its
//! `data` in the stored binary form. Run from anywhere:
//! `cargo +nightly run --manifest-path domain/fuzz/Cargo.toml --bin make_seeds`.

use std::path::Path;

use domain::data::put_value;
use domain::events::EVENT_TYPES;
use domain::RecordedEvent;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = here.join("../../replay-tests/logs/v1-small.ndjson");
    let text = std::fs::read_to_string(&log).expect("the recorded log");
    let dir = here.join("corpus/stored_data");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (i, line) in text.lines().enumerate() {
        let ev: RecordedEvent = serde_json::from_str(line).expect("a canonical line");
        let selector = EVENT_TYPES
            .iter()
            .position(|(t, _)| *t == ev.event_type)
            .expect("a known type");
        let mut seed = vec![selector as u8];
        put_value(&mut seed, &ev.data);
        let name = format!("line-{:02}-{}", i + 1, ev.event_type);
        std::fs::write(dir.join(name), seed).expect("write a seed");
    }
}
