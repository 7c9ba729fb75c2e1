//! Writes a Salesforce-like export for measuring `dealtrail import --profile salesforce`:
//! `Opportunity.csv` and `OpportunityHistory.csv` with ROWS history rows (default 1,000,000),
//! about four per opportunity: each moves up the standard stages (some rows also change the
//! amount), and seven in ten end won or lost. Deterministic (a fixed xorshift seed).
//! With `--ndjson FILE`, also the events that export maps to (what `import --profile
//! salesforce` would append to an empty log), as canonical NDJSON, for measuring `import`.
//!
//!     cargo run --release -p api --example salesforce_history -- DIR [ROWS] [--ndjson FILE]
//!     dealtrail --data /tmp/big import --profile salesforce DIR
//!     dealtrail --data /tmp/big2 import FILE

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

const STAGES: [(&str, u32); 6] = [
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn time(minutes: u64) -> String {
    // Minutes since 2020-01-01T00:00:00Z, in Salesforce's format.
    let t = chrono::DateTime::UNIX_EPOCH
        + chrono::Duration::seconds(1_577_836_800 + minutes as i64 * 60);
    t.format("%Y-%m-%dT%H:%M:%S.000+0000").to_string()
}

fn main() -> std::io::Result<()> {
    let usage = "usage: salesforce_history DIR [ROWS] [--ndjson FILE]";
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let ndjson = match args.iter().position(|a| a == "--ndjson") {
        Some(i) => {
            let file = args.get(i + 1).expect(usage).clone();
            args.drain(i..i + 2);
            Some(PathBuf::from(file))
        }
        None => None,
    };
    let mut args = args.into_iter();
    let dir = PathBuf::from(args.next().expect(usage));
    let rows: u64 = args
        .next()
        .map_or(1_000_000, |r| r.parse().expect("ROWS is a number"));
    std::fs::create_dir_all(&dir)?;
    let mut opps = BufWriter::new(File::create(dir.join("Opportunity.csv"))?);
    let mut history = BufWriter::new(File::create(dir.join("OpportunityHistory.csv"))?);
    writeln!(
        opps,
        "Id,AccountId,Account.Name,OwnerId,Name,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,CurrencyIsoCode"
    )?;
    writeln!(
        history,
        "OpportunityId,StageName,Amount,Probability,CloseDate,CreatedDate"
    )?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut written, mut n) = (0u64, 0u64);
    while written < rows {
        n += 1;
        let id = format!("006{n:015}");
        let account = rng.below(20_000);
        let owner = rng.below(200);
        let mut at = rng.below(5 * 365 * 24 * 60);
        let created = at;
        let mut amount = 1_000 + rng.below(200_000);
        let steps = (1 + rng.below(6)).min(rows - written);
        let mut stage = 0usize;
        let close = rng.below(10);
        let mut last = (STAGES[0].0, amount);
        for i in 0..steps {
            let closing = i + 1 == steps && steps > 1 && close < 7;
            let (name, p) = if closing {
                if close < 3 {
                    ("Closed Won", 100)
                } else {
                    ("Closed Lost", 0)
                }
            } else {
                if i > 0 {
                    stage = (stage + 1 + rng.below(2) as usize).min(STAGES.len() - 1);
                }
                STAGES[stage]
            };
            if i > 0 && rng.below(3) == 0 {
                amount = amount * (80 + rng.below(40)) / 100;
            }
            writeln!(
                history,
                "{id},{name},{amount},{p},{},{}",
                &time(at + 30 * 24 * 60)[..10],
                time(at)
            )?;
            last = (name, amount);
            at += 60 + rng.below(14 * 24 * 60);
            written += 1;
        }
        let closed = last.0.starts_with("Closed");
        writeln!(
            opps,
            "{id},001{account:015},Account {account},005{owner:015},Deal {n},{},{},{},{},{closed},{},USD",
            last.0,
            last.1,
            &time(at)[..10],
            time(created),
            last.0 == "Closed Won"
        )?;
    }
    opps.flush()?;
    history.flush()?;
    eprintln!(
        "{n} opportunities, {written} history rows in {}",
        dir.display()
    );
    if let Some(file) = ndjson {
        write_ndjson(&dir, &file)?;
    }
    Ok(())
}

/// The events the export in `dir` maps to, one canonical event a line.
fn write_ndjson(dir: &std::path::Path, file: &std::path::Path) -> std::io::Result<()> {
    use api::cli::import_csv::{map_files, Profile, ReadOptions, Source};
    let source = Source::Profile(Profile::Salesforce);
    let mapped = map_files(&source, &[dir.to_path_buf()], &ReadOptions::default())
        .map_err(|e| std::io::Error::other(e.message))?;
    assert!(mapped.problems.is_empty(), "{}", mapped.problems);
    let mut out = BufWriter::new(File::create(file)?);
    let mut n = 0;
    for m in mapped.events() {
        let mut line = serde_json::to_value(&m.event)?;
        line["stream"] = m.stream.clone().into();
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    eprintln!("{n} events in {}", file.display());
    Ok(())
}
