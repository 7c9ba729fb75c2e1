//! `dealtrail deals`: the deal list (SPEC §5.1) offline, through the same parsing and the
//! same index as `GET /v1/deals`; `--json` prints exactly its body.

use std::path::Path;

use projections::params::Scope;
use projections::ReadModel;
use serde_json::Value;

use super::report::{load_model, write_stdout};
use super::{open_existing_store, CliError};
use crate::reports;

/// The filters as flags, named like the query parameters (`--customer-id` = `customer_id`).
#[derive(Debug, Default, clap::Args)]
pub struct DealFlags {
    /// open, won or lost.
    #[arg(long)]
    pub status: Option<String>,
    /// The current owner.
    #[arg(long)]
    pub rep: Option<String>,
    /// The current owner's team.
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub customer_id: Option<String>,
    /// The current stage, or the stage at close.
    #[arg(long)]
    pub stage: Option<String>,
    /// The lost reason.
    #[arg(long)]
    pub reason: Option<String>,
    /// The competitor named when lost.
    #[arg(long)]
    pub competitor: Option<String>,
    /// From this time (RFC 3339) or date, inclusive: the close time of a won or lost deal,
    /// the open time of an open one.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this time or date (a date: the end of that day), inclusive.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub min_amount: Option<String>,
    /// Case-insensitive text in the deal id, title or customer name.
    #[arg(long)]
    pub q: Option<String>,
    /// Deals per page, 1..1000 (default 100).
    #[arg(long)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

impl DealFlags {
    /// The flags as the query string the HTTP API would receive.
    pub fn query(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("rep", &self.rep),
            ("team", &self.team),
            ("customer_id", &self.customer_id),
            ("stage", &self.stage),
            ("reason", &self.reason),
            ("competitor", &self.competitor),
            ("from", &self.from),
            ("to", &self.to),
            ("min_amount", &self.min_amount),
            ("q", &self.q),
            ("limit", &self.limit),
            ("cursor", &self.cursor),
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

pub async fn run(data: &Path, flags: &DealFlags, json: bool) -> Result<(), CliError> {
    let query = flags.query();
    let refused = |e: reports::ReportError| CliError::refused(e.to_string());
    // Check the parameters before reading the whole log.
    reports::deal_list(&ReadModel::new(), &query, Scope::Organisation).map_err(refused)?;
    let store = open_existing_store(data).await?;
    let projector = load_model(data, store.as_ref()).await?;
    let body =
        reports::deal_list(&projector.read(), &query, Scope::Organisation).map_err(refused)?;
    if json {
        return write_stdout(&format!("{}\n", body.get()));
    }
    let value: Value =
        serde_json::from_str(body.get()).map_err(|e| CliError::failure(e.to_string()))?;
    write_stdout(&table(&value))
}

/// The page for a person: one line a deal, then the cursor of the next page.
pub fn table(list: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let day = |v: &Value| s(v).get(..10).unwrap_or("").to_string();
    let mut out = format!(
        "{:<16} {:<6} {:<14} {:<12} {:>14} {:<10} {:<10} {:<14} {:<10} {}\n",
        "deal",
        "status",
        "stage",
        "owner",
        "amount",
        "opened",
        "closed",
        "reason",
        "competitor",
        "customer · title"
    );
    for d in list["deals"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<6} {:<14} {:<12} {:>14} {:<10} {:<10} {:<14} {:<10} {} · {}\n",
            s(&d["id"]),
            s(&d["status"]),
            s(&d["stage"]),
            s(&d["owner"]),
            format!("{} {}", d["amount"], s(&d["currency"])),
            day(&d["opened_at"]),
            day(&d["closed_at"]),
            s(&d["reason"]),
            s(&d["competitor"]),
            d["customer_name"]
                .as_str()
                .unwrap_or(d["customer_id"].as_str().unwrap_or("")),
            s(&d["title"]),
        ));
    }
    match list["next_cursor"].as_str() {
        Some(c) => out.push_str(&format!("next page: --cursor {c}\n")),
        None => out.push_str("(end of the list)\n"),
    }
    out
}
