//! Writes the seed corpora of the `record` and `chunk` targets from the recorded log
//! `replay-tests/logs/v1-small.ndjson`: each event as a format-2 and a format-1 record, and
//! runs of consecutive events sealed into chunks as the writer seals them. Run from anywhere:
//! `cargo +nightly run --manifest-path eventlog/fuzz/Cargo.toml --bin make_seeds`.

use std::path::Path;

use eventlog::fuzzing::{seal_encoded, GENESIS};
use eventlog::record::{encode_record, encode_record_into, encode_record_v1};
use eventlog::RecordedEvent;

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = here.join("../../replay-tests/logs/v1-small.ndjson");
    let text = std::fs::read_to_string(&log).expect("the recorded log");
    let events: Vec<RecordedEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a canonical line"))
        .collect();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = here.join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    };
    for (i, ev) in events.iter().enumerate() {
        let name = format!("line-{:02}-{}", i + 1, ev.event_type);
        write("record", format!("{name}-v2"), &encode_record(ev));
        // Format 1 is no longer written: a few are enough.
        if i % 8 == 0 {
            write("record", format!("{name}-v1"), &encode_record_v1(ev));
        }
    }
    // Chunks as the writer builds them: positions 1.., chained from the genesis hash.
    for (first, len) in [(0, 1), (0, 3), (6, 5), (11, 2)] {
        let mut chunk = Vec::new();
        let mut hash = GENESIS;
        for ev in &events[first..first + len] {
            hash = seal_encoded(&mut chunk, &hash, |out| encode_record_into(out, ev));
        }
        write(
            "chunk",
            format!("lines-{:02}-to-{:02}", first + 1, first + len),
            &chunk,
        );
    }
}
