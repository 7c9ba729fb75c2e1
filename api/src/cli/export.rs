//! `dealtrail export`: the log as canonical NDJSON (or CSV) on stdout.

use std::io::Write;
use std::path::Path;

use eventlog::Filter;

use super::{open_existing_store, progress, CliError, ExportFormat};

const PAGE: usize = 10_000;

pub async fn run(data: &Path, from_position: u64, format: ExportFormat) -> Result<(), CliError> {
    match export(data, from_position, format).await {
        Ok(()) => Ok(()),
        // `dealtrail export | head` closes the pipe early: that is not a failure.
        Err(Stop::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Stop::Write(e)) => Err(e.into()),
        Err(Stop::Cli(e)) => Err(e),
    }
}

/// Why an export stopped: writing to stdout failed (a closed pipe is not a failure), or
/// anything else.
enum Stop {
    Write(std::io::Error),
    Cli(CliError),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Write(e)
    }
}

impl From<CliError> for Stop {
    fn from(e: CliError) -> Stop {
        Stop::Cli(e)
    }
}

impl From<eventlog::StoreError> for Stop {
    fn from(e: eventlog::StoreError) -> Stop {
        Stop::Cli(e.into())
    }
}

async fn export(data: &Path, from_position: u64, format: ExportFormat) -> Result<(), Stop> {
    let store = open_existing_store(data).await?;
    let last = store.last_position().await?;
    let bar = progress::bar(
        Some(last.saturating_sub(from_position.max(1)) + 1),
        "exporting",
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == ExportFormat::Csv {
        writeln!(
            out,
            "position,id,stream,type,version,occurred_at,recorded_at,actor,data,metadata"
        )?;
    }
    let mut next = from_position.max(1);
    loop {
        let page = store.read_all(next, PAGE, &Filter::default()).await?;
        let Some(last_ev) = page.last() else { break };
        next = last_ev.position + 1;
        for ev in &page {
            match format {
                ExportFormat::Ndjson => {
                    serde_json::to_writer(&mut out, ev).map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
                ExportFormat::Csv => write_csv(&mut out, ev)?,
            }
        }
        bar.inc(page.len() as u64);
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(())
}

fn write_csv(out: &mut impl Write, ev: &domain::RecordedEvent) -> std::io::Result<()> {
    let fields = [
        ev.position.to_string(),
        ev.id.to_string(),
        ev.stream.clone(),
        ev.event_type.clone(),
        ev.version.to_string(),
        domain::envelope::format_time(&ev.occurred_at),
        domain::envelope::format_time(&ev.recorded_at),
        ev.actor.clone(),
        // Written straight from the stored bytes (serialising JSON cannot fail).
        serde_json::to_string(&ev.data).unwrap_or_default(),
        serde_json::to_string(&ev.metadata).unwrap_or_default(),
    ];
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    writeln!(out, "{}", line.join(","))
}

/// RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(
            super::csv_field(r#"{"a":1,"b":"x"}"#),
            r#""{""a"":1,""b"":""x""}""#
        );
        assert_eq!(super::csv_field("two\nlines"), "\"two\nlines\"");
    }
}
