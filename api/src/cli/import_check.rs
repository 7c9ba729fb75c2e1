//! The dry run of `import`: every line checked against the domain's rules, against the store's
//! current state plus the lines before it, before anything is written. A refused line refuses
//! the whole import: nothing of the file is written.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::rules::{check_batch, customer_named, Context};
use domain::state::{fold_stream, OrgState, StreamState};
use domain::RecordedEvent;
use eventlog::{EventStore, Filter, DEFAULT_ACTOR};
use uuid::Uuid;

use super::import::{proposed, Line};
use super::CliError;

/// What the dry run found: how many lines are already in the log (they will be skipped),
/// and the new events by type.
pub struct Checked {
    pub already_present: usize,
    pub new_by_type: BTreeMap<String, usize>,
}

/// The organisation as the log has it now (every `org-` stream folded).
pub async fn org_state(store: &dyn EventStore) -> Result<OrgState, CliError> {
    let mut org = OrgState::default();
    let mut next = 1;
    let org_only = Filter {
        types: Vec::new(),
        stream_prefix: Some("org-".into()),
    };
    loop {
        let page = store.read_all(next, 10_000, &org_only).await?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        for ev in &page {
            org.apply(ev);
        }
    }
    Ok(org)
}

/// Checks every line; the error names the file, the line and the rule.
pub async fn check(
    store: &dyn EventStore,
    lines: &[Line],
    now: DateTime<Utc>,
) -> Result<Checked, CliError> {
    let mut org = org_state(store).await?;
    let mut new_by_type = BTreeMap::new();
    let mut streams = Streams::new();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    let mut already_present = 0;
    for (i, line) in lines.iter().enumerate() {
        let l = &line.event;
        let at = |msg: String| {
            CliError::refused(format!("{}: line {}: {msg}", line.source, line.number))
        };
        if let Some(&first) = seen.get(&l.id) {
            let same = lines[first].event.same_content(l);
            if !same {
                return Err(at(format!(
                    "event id {} already appears on line {} with other content",
                    l.id, lines[first].number
                )));
            }
            already_present += 1;
            continue;
        }
        seen.insert(l.id, i);
        if let Some(existing) = store.event_by_id(l.id).await? {
            // The store's own test of a repeat, so that a line taken here as already
            // present is never refused by the append as a conflict.
            if !eventlog::same_content(&l.stream, &proposed(l), &existing) {
                return Err(at(format!(
                    "event id {} is already in the log (position {}) with other content",
                    l.id, existing.position
                )));
            }
            already_present += 1;
            continue;
        }
        load(store, &mut streams, &l.stream).await?;
        let version = streams.get(&l.stream).and_then(|(v, _)| *v);
        let recorded_at = l.recorded_at.unwrap_or(now);
        let ev = RecordedEvent {
            id: l.id,
            stream: l.stream.clone(),
            event_type: l.event_type.clone(),
            version: version.map_or(0, |v| v + 1),
            position: 0,
            occurred_at: l.occurred_at.unwrap_or(recorded_at),
            recorded_at,
            actor: l.actor.clone().unwrap_or_else(|| DEFAULT_ACTOR.to_string()),
            data: l.data.clone().into(),
            metadata: l.metadata.clone().unwrap_or_default().into(),
            schema_version: domain::schema::current_schema_version(&l.event_type),
        };
        let batch = std::slice::from_ref(&ev);
        if let Some(id) = customer_named(&l.stream, batch) {
            load(store, &mut streams, &format!("customer-{id}")).await?;
        }
        let customer_states = &streams;
        let customers = |id: &str| {
            customer_states
                .get(&format!("customer-{id}"))
                .and_then(|(_, s)| s.as_customer().cloned())
        };
        let ctx = Context {
            org: &org,
            now,
            customers: &customers,
        };
        match check_batch(&ctx, &state_of(&streams, &l.stream), &l.stream, batch) {
            Ok(next_state) => {
                streams.insert(l.stream.clone(), (Some(ev.version), next_state));
                *new_by_type.entry(ev.event_type.clone()).or_default() += 1;
                if l.stream.starts_with("org-") {
                    org.apply(&ev);
                }
            }
            Err(mut r) => {
                r.index = None;
                return Err(at(r.to_string()));
            }
        }
    }
    Ok(Checked {
        already_present,
        new_by_type,
    })
}

/// stream → (version of its last event, state after it); `None` version = no events yet.
type Streams = HashMap<String, (Option<u64>, StreamState)>;

/// Folds `stream` from the store into `streams` unless it is there already.
async fn load(store: &dyn EventStore, streams: &mut Streams, stream: &str) -> Result<(), CliError> {
    if !streams.contains_key(stream) {
        let events = store.read_stream(stream, 0, usize::MAX).await?;
        let version = events.last().map(|e| e.version);
        streams.insert(stream.to_string(), (version, fold_stream(stream, &events)));
    }
    Ok(())
}

fn state_of(streams: &Streams, stream: &str) -> StreamState {
    streams
        .get(stream)
        .map_or(StreamState::Empty, |(_, s)| s.clone())
}
