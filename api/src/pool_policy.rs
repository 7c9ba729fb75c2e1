//! The public pool's release policy (SPEC §2.6): owned customers with no activity for
//! `release_after_days` go back to the pool through an ordinary `CustomerReleased` event
//! appended by actor `system` — an event like any other, visible in the log and the timeline.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::{ExpectedVersion, ProposedEvent};
use eventlog::{EventStore, StoreError};

use crate::projector::Projector;

/// How often the policy looks for customers to release.
const EVERY: Duration = Duration::from_secs(3600);

/// Releases the customers that are due now; returns how many were released. A customer
/// touched between the look-up and the append is skipped (the expected version no longer
/// matches), never released twice.
pub async fn release_due(
    store: &dyn EventStore,
    projector: &Arc<Projector>,
    days: u32,
) -> Result<usize, StoreError> {
    let due = projector
        .query(move |model| projections::pool::due_for_release(model, days, Utc::now()))
        .await;
    let mut released = 0;
    for c in due {
        let stream = format!("customer-{}", c.customer_id);
        let Some(version) = store.stream_version(&stream).await? else {
            continue;
        };
        let event = ProposedEvent {
            id: None,
            event_type: "CustomerReleased".into(),
            occurred_at: None,
            actor: Some("system".into()),
            data: serde_json::json!({ "reason": "no_follow_up" }).into(),
            metadata: None,
            recorded_at: None,
        };
        match store
            .append(&stream, ExpectedVersion::Exact(version), vec![event])
            .await
        {
            Ok(_) => released += 1,
            Err(StoreError::WrongExpectedVersion { .. } | StoreError::Rejected(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(released)
}

/// Runs the policy every hour until `shutdown`.
pub async fn run(
    store: Arc<dyn EventStore>,
    projector: Arc<Projector>,
    days: u32,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match release_due(store.as_ref(), &projector, days).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "pool policy released idle customers"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pool policy failed"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
