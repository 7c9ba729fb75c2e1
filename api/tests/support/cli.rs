//! Running the real `dealtrail` binary on a data directory (shared by the CLI tests; each
//! test file uses what it needs of it).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The recorded log every version must read (49 events, two deals, July 2026 last).
pub const SMALL_LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../replay-tests/logs/v1-small.ndjson"
);

pub fn dealtrail(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run dealtrail")
}

/// Standard output of a run that must succeed.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A store in `data` holding the NDJSON `log`.
pub fn store_with(data: &Path, log: &str) {
    let file = data.with_extension("ndjson");
    std::fs::write(&file, log).unwrap();
    ok(dealtrail(data, &["import", file.to_str().unwrap()]));
}
