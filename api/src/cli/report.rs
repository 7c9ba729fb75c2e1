//! `dealtrail report NAME` and `dealtrail replay DEAL_ID`: reports computed offline from the
//! data directory, through the same functions and parameter parsing as the HTTP API.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use eventlog::EventStore;
use projections::ReadModel;
use serde_json::Value;

use super::{open_existing_store, progress, CliError};
use crate::projector::Projector;
use crate::reports::{self, ReportError};

/// The report parameters as flags, named like the HTTP query parameters (`--as-of` = `as_of`).
#[derive(Debug, Default, clap::Args)]
pub struct ReportFlags {
    /// Start of the period (RFC 3339), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period (RFC 3339), exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Only events with occurred_at ≤ this time count (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
    /// funnel: none, rep, source or industry.
    #[arg(long)]
    pub group_by: Option<String>,
    /// reps: how many months.
    #[arg(long)]
    pub months: Option<String>,
    /// reps: the last month ("2026-06").
    #[arg(long)]
    pub end: Option<String>,
    /// reps: the metric the trend classifies.
    #[arg(long)]
    pub metric: Option<String>,
    /// reps: how many months the trend looks at.
    #[arg(long)]
    pub window: Option<String>,
    /// reps: the amount from which a lost deal is big.
    #[arg(long)]
    pub big_deal_amount: Option<String>,
    /// pipeline: days without an event after which an open deal is stale.
    #[arg(long)]
    pub stale_days: Option<String>,
    /// pipeline: days in one stage after which an open deal is stuck.
    #[arg(long)]
    pub stuck_days: Option<String>,
    /// follow-up: whose list (a rep id).
    #[arg(long)]
    pub rep: Option<String>,
    /// follow-up: the pool policy's release_after_days, as `serve --pool-release-after-days`
    /// (lists the customers about to go back to the pool; off when not given).
    #[arg(long)]
    pub pool_release_after_days: Option<u32>,
}

impl ReportFlags {
    /// The flags as the query string the HTTP API would receive.
    pub fn query(&self) -> String {
        let pairs = [
            ("from", &self.from),
            ("to", &self.to),
            ("as_of", &self.as_of),
            ("group_by", &self.group_by),
            ("months", &self.months),
            ("end", &self.end),
            ("metric", &self.metric),
            ("window", &self.window),
            ("big_deal_amount", &self.big_deal_amount),
            ("stale_days", &self.stale_days),
            ("stuck_days", &self.stuck_days),
            ("rep", &self.rep),
        ];
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// The read model of a data directory: its snapshot, caught up with the log.
pub async fn load_model(data: &Path, store: &dyn EventStore) -> Result<Projector, CliError> {
    Ok(Projector::open(data, store).await?)
}

/// `dealtrail rebuild`: the read model from scratch, saved with the position it reflects.
pub async fn run_rebuild(data: &Path) -> Result<(), CliError> {
    let store = open_existing_store(data).await?;
    let last = store.last_position().await?;
    let bar = progress::bar(Some(last), "rebuilding");
    let started = std::time::Instant::now();
    // Only saved: the indexes are not stored, they are built when the snapshot is read.
    let mut model = ReadModel::deferred();
    crate::projector::catch_up_with(store.as_ref(), &mut model, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let position = model.last_position;
    Arc::new(Projector::with_model(data, model))
        .save(store.as_ref())
        .await
        .map_err(|e| CliError::failure(format!("cannot save the read model: {e}")))?;
    eprintln!(
        "rebuilt the read model from {position} events in {secs:.2} s ({:.0} events/s)",
        position as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn print(v: &Value, compact: bool) -> Result<(), CliError> {
    let text = if compact {
        serde_json::to_string(v)
    } else {
        serde_json::to_string_pretty(v)
    }
    .map_err(|e| CliError::failure(e.to_string()))?;
    write_stdout(&format!("{text}\n"))
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
pub(super) fn write_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn refused(e: ReportError) -> CliError {
    CliError::refused(e.to_string())
}

pub async fn run_report(
    data: &Path,
    name: &str,
    flags: &ReportFlags,
    json: bool,
) -> Result<(), CliError> {
    if !reports::REPORTS.contains(&name) {
        return Err(refused(ReportError::UnknownReport(name.to_string())));
    }
    let options = reports::ReportOptions {
        pool_release_after_days: flags.pool_release_after_days,
    };
    let run = |model: &ReadModel| {
        let scope = projections::params::Scope::Organisation;
        reports::run_with(model, name, &flags.query(), Utc::now(), scope, &options)
    };
    // Check the parameters before reading the whole log (a rep is known only from the log).
    match run(&ReadModel::new()) {
        Err(ReportError::UnknownRep(_)) | Ok(_) => {}
        Err(e) => return Err(refused(e)),
    }
    let store = open_existing_store(data).await?;
    let projector = load_model(data, store.as_ref()).await?;
    let body = run(&projector.read()).map_err(refused)?;
    if json {
        // Exactly the HTTP body.
        return write_stdout(&format!("{}\n", body.get()));
    }
    let value: Value =
        serde_json::from_str(body.get()).map_err(|e| CliError::failure(e.to_string()))?;
    print(&value, false)
}

pub async fn run_replay(data: &Path, deal_id: &str, json: bool) -> Result<(), CliError> {
    let store = open_existing_store(data).await?;
    let projector = load_model(data, store.as_ref()).await?;
    let events = reports::deal_events(store.as_ref(), deal_id)
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    let replay = reports::replay(&projector.read(), deal_id, &events, Utc::now())
        .ok_or_else(|| CliError::refused(format!("no deal {deal_id:?} in the log")))?;
    let body = serde_json::to_value(&replay).map_err(|e| CliError::failure(e.to_string()))?;
    if json {
        return print(&body, true);
    }
    write_stdout(&story(&body))
}

/// The deal's story for a person: one line a step, then the analysis.
pub fn story(replay: &Value) -> String {
    let mut out = format!(
        "Deal {} (amounts in {})\n",
        replay["deal_id"].as_str().unwrap_or("?"),
        replay["currency"].as_str().unwrap_or("?")
    );
    for step in replay["steps"].as_array().into_iter().flatten() {
        let s = &step["state"];
        out.push_str(&format!(
            "{:<20}  #{:<8} {:<10} {:<55}  [{} · {} · {}]\n",
            step["occurred_at"]
                .as_str()
                .unwrap_or("")
                .replace('T', " ")
                .trim_end_matches('Z'),
            step["position"],
            step["actor"].as_str().unwrap_or(""),
            step["summary"].as_str().unwrap_or(""),
            s["status"].as_str().unwrap_or(""),
            s["stage"].as_str().unwrap_or(""),
            s["amount"],
        ));
    }
    out.push_str("\nAnalysis\n");
    if let Some(a) = replay["analysis"].as_object() {
        for (k, v) in a {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k:<32} {v}\n"));
        }
    }
    out
}
