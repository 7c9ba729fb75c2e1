//! Writes the seed corpora of the `import_lines` and `append_body` targets from the recorded
//! log `replay-tests/logs/v1-small.ndjson`, whose first `SEEDED` events every input starts
//! from: each event as a one-line file, each later one as an append, and runs of lines as
//! files.
//! Run from anywhere: `cargo +nightly run --manifest-path api/fuzz/Cargo.toml --bin make_seeds`.

use std::path::Path;

use api_fuzz::{append_seed, recorded_log, SEEDED};

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(here.join("../../replay-tests/logs/v1-small.ndjson"))
        .expect("the recorded log");
    let lines: Vec<&str> = text.lines().collect();
    let events = recorded_log();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = here.join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    };
    for i in 0..lines.len() {
        let name = format!("line-{:02}-{}", i + 1, events[i].event_type);
        // The first SEEDED are in the store already: importing one again is a no-op.
        write(
            "import_lines",
            name.clone(),
            format!("{}\n", lines[i]).as_bytes(),
        );
        if i < SEEDED {
            continue;
        }
        write("append_body", name.clone(), &append_seed(&events[i], None));
        if i % 4 == 0 {
            let version = events[..i]
                .iter()
                .filter(|e| e.stream == events[i].stream)
                .count();
            let expected = (version as u64).checked_sub(1);
            write(
                "append_body",
                format!("{name}-expected"),
                &append_seed(&events[i], expected),
            );
        }
    }
    // Runs of consecutive lines (each under 4 KB), so that later lines find their history.
    for (first, last) in [(17, 25), (26, 33), (34, 41), (42, 49)] {
        let run = lines[first - 1..last].join("\n") + "\n";
        write(
            "import_lines",
            format!("lines-{first:02}-to-{last:02}"),
            run.as_bytes(),
        );
    }
}
