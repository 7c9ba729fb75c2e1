//! What the tests that run the `dealtrail` binary share.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout};

/// What a started `dealtrail serve` prints after its address. Keep it until the server has
/// stopped: a server whose stdout is closed fails when it prints.
pub type Output = Lines<BufReader<ChildStdout>>;

/// Reads `child`'s (piped) stdout up to the line that gives its address: `host:port`, and the
/// rest of the output.
pub fn listening_address(child: &mut Child) -> (String, Output) {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("dealtrail listening on http://") {
            return (rest.split_whitespace().next().unwrap().to_string(), lines);
        }
    }
}
