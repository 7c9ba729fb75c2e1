//! `dealtrail erase customer|lead ID --reason …` (SPEC §7): what `POST
//! /v1/customers/{id}/erase` does, offline: the key destroyed, `PersonalDataErased` and its
//! audit event appended; then the read model's snapshot, which held the text, is rebuilt
//! from the log. Prints what was erased as JSON.

use std::path::Path;

use eventlog::EraseError;

use super::{open_existing_store, report, CliError, ExitCode};
use crate::snapshot;

/// Whose personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Person {
    Customer,
    Lead,
}

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// customer or lead.
    #[arg(value_enum)]
    pub kind: Person,
    /// The customer's or lead's id (the part of the stream name after `customer-`/`lead-`).
    pub id: String,
    /// Why (recorded in the log with the erasure; not personal data itself).
    #[arg(long)]
    pub reason: String,
    /// Who erases (the events' actor); default `cli:$USER`.
    #[arg(long)]
    pub actor: Option<String>,
}

fn erase_error(e: EraseError) -> CliError {
    match e {
        EraseError::Store(e) => e.into(),
        EraseError::Unsupported => CliError::failure(e.to_string()),
        e => CliError::refused(e.to_string()),
    }
}

pub async fn run(data: &Path, args: &EraseArgs) -> Result<(), CliError> {
    let category = match args.kind {
        Person::Customer => "customer",
        Person::Lead => "lead",
    };
    if !domain::envelope::is_entity_id(&args.id) {
        return Err(CliError::new(
            ExitCode::Usage,
            format!(
                "{:?} is not an id: 1-64 characters from [A-Za-z0-9_.:-]",
                args.id
            ),
        ));
    }
    let actor = args.actor.clone().unwrap_or_else(|| {
        std::env::var("USER").map_or_else(|_| "cli".to_string(), |u| format!("cli:{u}"))
    });
    let store = open_existing_store(data).await?;
    let erasure = store
        .erase_personal_data(&format!("{category}-{}", args.id), &args.reason, &actor)
        .await
        .map_err(erase_error)?;
    // The store is closed before the snapshot is rebuilt (it opens the store again).
    drop(store);
    if snapshot::path(data).exists() {
        report::run_rebuild(data).await?;
    }
    let body = serde_json::json!({
        "person": erasure.person,
        "position": erasure.position,
        "events": erasure.events,
        "fields": erasure.fields,
        "now_reads": eventlog::personal::ERASED,
    });
    report::write_stdout(&format!("{body}\n"))
}
