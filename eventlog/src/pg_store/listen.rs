//! One `LISTEN` connection per node. Every appending transaction (of any node) notifies the
//! schema's channel with its last position at commit; this task moves the node's head
//! watermark, which wakes the node's subscribers. When the connection drops it reconnects
//! (backing off up to 5 s) and reads the head, so nothing committed meanwhile is missed; when
//! idle it reads the head every few seconds (a heartbeat that also notices a dead peer).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::read::head;
use super::{db_error, Shared};
use crate::StoreError;

/// How long an idle listener waits before reading the head itself.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(config: tokio_postgres::Config, shared: Arc<Shared>) {
    let mut delay = Duration::from_millis(100);
    loop {
        if let Err(e) = session(&config, &shared, &mut delay).await {
            tracing::warn!(error = %e, "the PostgreSQL listener lost its connection; reconnecting");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

async fn session(
    config: &tokio_postgres::Config,
    shared: &Shared,
    delay: &mut Duration,
) -> Result<(), StoreError> {
    let (client, mut connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(db_error)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // Drives the connection and passes its notifications on; ends (dropping `tx`) with it.
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the listener's connection ended");
                    break;
                }
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN {}", shared.channel))
        .await
        .map_err(db_error)?;
    // Listening: whatever commits from now on is notified; read what came before.
    shared.publish_head(head(&client).await?.0);
    *delay = Duration::from_millis(100);
    loop {
        match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
            Ok(Some(payload)) => match payload.parse::<u64>() {
                Ok(p) => shared.publish_head(p),
                Err(_) => {
                    tracing::warn!(payload, "an unexpected notification on the store's channel")
                }
            },
            Ok(None) => {
                return Err(StoreError::Unavailable(
                    "the listener's connection was closed".into(),
                ))
            }
            Err(_) => shared.publish_head(head(&client).await?.0),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
