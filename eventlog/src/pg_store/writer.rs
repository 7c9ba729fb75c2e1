//! One writer thread per node: it drains the queued requests and decides them, in order, in
//! one transaction (group commit: concurrent appends on one node share a transaction, as
//! they share an fsync on sled). The transaction:
//!
//! 1. `BEGIN`; lock the `head` row (`SELECT … FOR UPDATE`): appends of every node are
//!    serialised here. Whoever holds the lock appends at `head + 1`; the lock is released by
//!    `COMMIT`, after the rows became visible, so the next holder's positions follow and are
//!    never visible before these. A transaction that fails leaves `head` as it was: no gap.
//!    In the same round trip: the current version of every stream the group names and the
//!    events already recorded under the ids it gives.
//! 2. Each request is decided as on sled: envelope, idempotency by id, expected version,
//!    assignment, then the validator, which reads the log inside this transaction (see
//!    `view`): the log as it stands, with no other node able to append until we commit.
//! 3. One `INSERT … SELECT FROM unnest(…)` of the whole group with its chain hashes, the new
//!    head, a `NOTIFY` for the other nodes and `COMMIT`, pipelined in one round trip.
//!    `synchronous_commit` is on for this connection: acknowledged means in the WAL on disk.
//!
//! If the connection is lost around `COMMIT`, the outcome is unknown: the writer reconnects,
//! waits for the head lock (so the lost transaction has ended either way) and looks whether
//! the group's last event is there, so an append is acknowledged or refused, never both.
//!
//! Before deciding, the writer compares the locked head with its own last one: if another
//! node appended meanwhile under a prefix the validator read whole (the organisation), the
//! validator's caches are reset (its per-stream cache is keyed by version, so it needs no
//! reset: versions come from the database).

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use super::read::{decode, head_of, RECORD};
use super::view::PgView;
use super::{connect, db_error, Shared};
use crate::prepare;
use crate::record::encode_record;
use crate::sled_store::chain_hash;
use crate::{
    AppendOutcome, AppendValidator, MultiAppendError, RecordedEvent, StoreError, StreamBatch,
};

/// At most this many requests share one transaction...
const MAX_GROUP: usize = 4096;
/// ...and no more requests join a group once it holds this many events.
const MAX_GROUP_EVENTS: usize = 50_000;
/// The longest a small group waits for the callers the last group answered (see `run`).
const GATHER: Duration = Duration::from_micros(1500);

pub(crate) type Reply = Result<Vec<AppendOutcome>, MultiAppendError>;

/// One request's batches and the result of their envelope checks.
type Work = (Vec<StreamBatch>, Vec<Result<(), StoreError>>);

pub(crate) struct Request {
    batches: Vec<StreamBatch>,
    /// [`prepare::check_envelope`] of each batch, done by the caller (it needs no log).
    envelopes: Vec<Result<(), StoreError>>,
    reply: oneshot::Sender<Reply>,
}

impl Request {
    pub(crate) fn new(batches: Vec<StreamBatch>, reply: oneshot::Sender<Reply>) -> Request {
        let envelopes = batches.iter().map(prepare::check_envelope).collect();
        Request {
            batches,
            envelopes,
            reply,
        }
    }

    fn events(&self) -> usize {
        self.batches.iter().map(|b| b.events.len()).sum()
    }
}

/// Events accepted into the current group commit, not written yet.
#[derive(Default)]
struct Pending {
    events: Vec<RecordedEvent>,
    /// Event id → index in `events`.
    ids: HashMap<Uuid, usize>,
    /// Stream → its last version after these events.
    versions: HashMap<String, u64>,
    runs: Vec<Range<usize>>,
}

impl Pending {
    fn find(&self, id: &Uuid) -> Option<&RecordedEvent> {
        self.ids.get(id).map(|&i| &self.events[i])
    }

    fn push_run(&mut self, events: Vec<RecordedEvent>) {
        let start = self.events.len();
        if let Some(last) = events.last() {
            self.versions.insert(last.stream.clone(), last.version);
        }
        for ev in events {
            self.ids.insert(ev.id, self.events.len());
            self.events.push(ev);
        }
        self.runs.push(start..self.events.len());
    }

    fn absorb(&mut self, other: Pending) {
        let offset = self.events.len();
        self.ids
            .extend(other.ids.into_iter().map(|(id, i)| (id, i + offset)));
        self.versions.extend(other.versions);
        self.runs.extend(
            other
                .runs
                .into_iter()
                .map(|r| r.start + offset..r.end + offset),
        );
        self.events.extend(other.events);
    }
}

/// The writer's connection and its prepared statements.
struct Conn {
    client: Client,
    lock_head: Statement,
    versions: Statement,
    by_ids: Statement,
    foreign: Statement,
    insert: Statement,
    set_head: Statement,
    notify: Statement,
}

impl Conn {
    async fn open(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let client = connect(config).await?;
        client
            .batch_execute("SET synchronous_commit = on")
            .await
            .map_err(db_error)?;
        let p = |sql: String| {
            let client = &client;
            async move { client.prepare(&sql).await.map_err(db_error) }
        };
        Ok(Conn {
            lock_head: p("SELECT position, hash FROM head WHERE id = 1 FOR UPDATE".into()).await?,
            versions: p(
                "SELECT s, (SELECT max(version) FROM events WHERE stream = s) \
                         FROM unnest($1::text[]) AS s"
                    .into(),
            )
            .await?,
            by_ids: p(format!("SELECT {RECORD} FROM events WHERE id = ANY($1)")).await?,
            foreign: p("SELECT EXISTS (SELECT 1 FROM events WHERE position > $1 \
                        AND starts_with(stream, $2))"
                .into())
            .await?,
            insert: p(
                "INSERT INTO events (position, id, stream, version, type, record, crc, hash) \
                       SELECT * FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::int8[], \
                       $5::text[], $6::bytea[], $7::int4[], $8::bytea[])"
                    .into(),
            )
            .await?,
            set_head: p("UPDATE head SET position = $1, hash = $2 WHERE id = 1".into()).await?,
            notify: p("SELECT pg_notify($1, $2)".into()).await?,
            client,
        })
    }
}

/// What the database said before the group was decided.
struct Locked {
    head: u64,
    hash: [u8; 32],
    /// Current version of each stream the group names (`None`: no stream).
    versions: HashMap<String, Option<u64>>,
    /// Events already recorded under ids the group gives.
    known: HashMap<Uuid, RecordedEvent>,
}

pub(crate) struct Writer {
    config: tokio_postgres::Config,
    rt: Runtime,
    conn: Option<Conn>,
    shared: Arc<Shared>,
    validator: Arc<dyn AppendValidator>,
    /// The head after this node's last transaction (`None`: unknown, e.g. after a failure).
    last_head: Option<u64>,
}

/// The same error again, for every request of a failed group.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt { position, reason } => StoreError::Corrupt {
            position: *position,
            reason: reason.clone(),
        },
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// [`db_error`] of an error we only borrow.
fn db_error_ref(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if db.code().code().starts_with("08") || db.code().code().starts_with("57P") => {
            StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
        }
        Some(db) => StoreError::Backend(format!("PostgreSQL refused the append: {}", db.message())),
        None => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

fn lost(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_))
}

impl Writer {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        shared: Arc<Shared>,
        validator: Arc<dyn AppendValidator>,
    ) -> Result<Writer, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot start the writer's runtime: {e}")))?;
        Ok(Writer {
            config,
            rt,
            conn: None,
            shared,
            validator,
            last_head: None,
        })
    }

    pub(crate) fn run(mut self, requests: mpsc::Receiver<Request>) {
        // How many requests the last group held: the callers it answered are about to send
        // their next requests, so a group much smaller than that waits a moment for them
        // (at most `GATHER`) rather than taking a commit for a few.
        let mut last_group = 0usize;
        while let Ok(first) = requests.recv() {
            let mut events = first.events();
            let mut group = vec![first];
            let deadline = std::time::Instant::now() + GATHER;
            while group.len() < MAX_GROUP && events < MAX_GROUP_EVENTS {
                let next = match requests.try_recv() {
                    Ok(r) => Some(r),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                    Err(mpsc::TryRecvError::Empty) if group.len() * 2 < last_group => {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        requests.recv_timeout(left).ok()
                    }
                    Err(mpsc::TryRecvError::Empty) => None,
                };
                let Some(r) = next else { break };
                events += r.events();
                group.push(r);
            }
            last_group = group.len();
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, requests: Vec<Request>) {
        let (replies, work): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .map(|r| (r.reply, (r.batches, r.envelopes)))
            .unzip();
        let answers = match self.transact(work) {
            Ok(answers) => {
                self.shared.set_unavailable(None);
                answers
            }
            Err(e) => {
                if lost(&e) {
                    self.conn = None;
                    self.shared.set_unavailable(Some(e.to_string()));
                }
                self.last_head = None;
                self.validator.reset();
                (0..replies.len())
                    .map(|_| Err(MultiAppendError::general(again(&e))))
                    .collect()
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }

    fn conn(&mut self) -> Result<&Conn, StoreError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.rt.block_on(Conn::open(&self.config))?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no connection".into()))
    }

    /// Decides and writes one group. `Err`: the group failed as a whole (nothing written).
    fn transact(&mut self, work: Vec<Work>) -> Result<Vec<Reply>, StoreError> {
        let mut streams: Vec<&str> = work
            .iter()
            .flat_map(|(b, _)| b.iter().map(|b| b.stream.as_str()))
            .collect();
        streams.sort_unstable();
        streams.dedup();
        let ids: Vec<Uuid> = work
            .iter()
            .flat_map(|(b, _)| b.iter().flat_map(|b| b.events.iter().filter_map(|e| e.id)))
            .collect();
        self.conn()?;
        let conn = self.conn.as_ref().expect("connected above");
        let by_streams: [&(dyn ToSql + Sync); 1] = [&streams];
        let by_ids: [&(dyn ToSql + Sync); 1] = [&ids];
        let locked = self.rt.block_on(async {
            let (begin, head, versions, known) = tokio::join!(
                conn.client.batch_execute("BEGIN"),
                conn.client.query_one(&conn.lock_head, &[]),
                conn.client.query(&conn.versions, &by_streams),
                conn.client.query(&conn.by_ids, &by_ids),
            );
            begin.map_err(db_error)?;
            let (head, hash) = head_of(&head.map_err(db_error)?)?;
            let versions = versions
                .map_err(db_error)?
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, Option<i64>>(1).map(|v| v as u64),
                    )
                })
                .collect();
            let known = known
                .map_err(db_error)?
                .iter()
                .map(|r| decode(r).map(|e| (e.id, e)))
                .collect::<Result<_, _>>()?;
            Ok::<_, StoreError>(Locked {
                head,
                hash,
                versions,
                known,
            })
        });
        let locked = match locked {
            Ok(l) => l,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        if let Err(e) = self.forget_foreign(locked.head) {
            self.abandon();
            return Err(e);
        }
        let mut group = Pending::default();
        let answers: Vec<Reply> = work
            .into_iter()
            .map(|(batches, envelopes)| self.accept(&locked, &mut group, batches, envelopes))
            .collect();
        if group.events.is_empty() {
            self.rollback();
            self.last_head = Some(locked.head);
            return Ok(answers);
        }
        let last = self.write(&locked, &group)?;
        self.last_head = Some(last);
        self.shared.publish_head(last);
        Ok(answers)
    }

    /// Ends the transaction without writing (the lock is released).
    fn rollback(&mut self) {
        if let Some(c) = &self.conn {
            if self
                .rt
                .block_on(c.client.batch_execute("ROLLBACK"))
                .is_err()
            {
                self.conn = None;
            }
        }
    }

    /// Gives up the transaction after a failure (dropping the connection if it is broken).
    fn abandon(&mut self) {
        self.rollback();
    }

    /// Another node appended since our last transaction: reset the validator's caches if any
    /// of it is under a prefix the validator reads whole.
    fn forget_foreign(&mut self, head: u64) -> Result<(), StoreError> {
        if self.last_head == Some(head) {
            return Ok(());
        }
        let Some(since) = self.last_head else {
            self.validator.reset();
            return Ok(());
        };
        let prefixes: Vec<String> = self
            .shared
            .prefixes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let conn = self.conn.as_ref().expect("connected");
        for prefix in prefixes {
            let touched: bool = self
                .rt
                .block_on(
                    conn.client
                        .query_one(&conn.foreign, &[&(since as i64), &prefix]),
                )
                .map_err(db_error)?
                .get(0);
            if touched {
                self.validator.reset();
                break;
            }
        }
        Ok(())
    }

    /// Inserts the group, moves the head, notifies and commits; returns the new head.
    fn write(&mut self, locked: &Locked, group: &Pending) -> Result<u64, StoreError> {
        let n = group.events.len();
        let mut cols = Columns::with_capacity(n);
        let mut hash = locked.hash;
        for ev in &group.events {
            let record = encode_record(ev);
            hash = chain_hash(&hash, &record);
            cols.push(ev, record, hash);
        }
        let last = group.events[n - 1].position;
        let conn = self.conn.as_ref().expect("connected");
        let head_hash = hash.to_vec();
        let payload = last.to_string();
        let rows: [&(dyn ToSql + Sync); 8] = [
            &cols.positions,
            &cols.ids,
            &cols.streams,
            &cols.versions,
            &cols.types,
            &cols.records,
            &cols.crcs,
            &cols.hashes,
        ];
        let last_i64 = last as i64;
        let new_head: [&(dyn ToSql + Sync); 2] = [&last_i64, &head_hash];
        let notice: [&(dyn ToSql + Sync); 2] = [&self.shared.channel, &payload];
        let (insert, set_head, notify, commit) = self.rt.block_on(async {
            tokio::join!(
                conn.client.execute(&conn.insert, &rows),
                conn.client.execute(&conn.set_head, &new_head),
                conn.client.execute(&conn.notify, &notice),
                conn.client.batch_execute("COMMIT"),
            )
        });
        let results = [insert.map(|_| ()), set_head.map(|_| ()), notify.map(|_| ())];
        // A statement the server refused aborted the transaction (its COMMIT rolled back).
        if let Some(e) = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| e.as_db_error().is_some())
        {
            let e = db_error_ref(e);
            if commit.is_err() || lost(&e) {
                self.conn = None;
            }
            self.validator.reset();
            return Err(e);
        }
        let outcome = results.into_iter().chain([commit]).find_map(Result::err);
        match outcome {
            None => Ok(last),
            Some(e) if e.as_db_error().is_some() => {
                self.rollback();
                Err(db_error(e))
            }
            Some(e) => {
                tracing::warn!(error = %e, "the connection was lost around COMMIT: finding out whether it committed");
                self.conn = None;
                let last_id = group.events[n - 1].id;
                match self.committed(last, last_id) {
                    Ok(true) => Ok(last),
                    Ok(false) => Err(StoreError::Unavailable(format!(
                        "PostgreSQL: the connection was lost before the commit: {e}"
                    ))),
                    Err(e2) => Err(e2),
                }
            }
        }
    }

    /// After a commit of unknown outcome: whether the event `id` is at `position`. Waits for
    /// the head lock first, so the lost transaction has ended (committed or rolled back).
    fn committed(&mut self, position: u64, id: Uuid) -> Result<bool, StoreError> {
        let mut delay = Duration::from_millis(50);
        let mut last_error = None;
        for _ in 0..40 {
            let answer = self.rt.block_on(async {
                let conn = Conn::open(&self.config).await?;
                let c = &conn.client;
                c.batch_execute("BEGIN; SET LOCAL lock_timeout = '10s'")
                    .await
                    .map_err(db_error)?;
                c.query_one(&conn.lock_head, &[]).await.map_err(db_error)?;
                let row = c
                    .query_opt(
                        "SELECT id FROM events WHERE position = $1",
                        &[&(position as i64)],
                    )
                    .await
                    .map_err(db_error)?;
                c.batch_execute("ROLLBACK").await.map_err(db_error)?;
                Ok::<_, StoreError>((conn, row.map(|r| r.get::<_, Uuid>(0))))
            });
            match answer {
                Ok((conn, found)) => {
                    self.conn = Some(conn);
                    return Ok(found == Some(id));
                }
                Err(e) => {
                    last_error = Some(e);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "PostgreSQL: the outcome of an append is unknown (the server could not be reached to \
             find out: {}); retry it with the same event ids",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// If every event of the batch is already in the log (or accepted earlier in this
    /// group) with the same content, the original outcome. `None` if none of them is.
    fn deduplicate(
        batch: &StreamBatch,
        locked: &Locked,
        earlier: [&Pending; 2],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let mut found = Vec::new();
        for (k, ev) in batch.events.iter().enumerate() {
            let Some(id) = ev.id else { continue };
            let existing = earlier
                .iter()
                .find_map(|p| p.find(&id))
                .or_else(|| locked.known.get(&id));
            if let Some(existing) = existing {
                if !prepare::same_content(&batch.stream, ev, existing) {
                    return Err(StoreError::IdConflict {
                        id,
                        position: existing.position,
                    });
                }
                found.push((k, existing));
            }
        }
        prepare::already_written(&found, batch.events.len())
    }

    fn validate(
        &self,
        view: &PgView<'_>,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            self.validator.validate(view, stream, batch)
        }))
        .map_err(|_| StoreError::Backend("the append validator panicked".into()))?;
        verdict.map_err(|e| e.for_batch(batch.len()))
    }

    /// Decides one request against the log plus `group`; on success adds its events to
    /// `group`. On error `group` is unchanged.
    fn accept(
        &self,
        locked: &Locked,
        group: &mut Pending,
        batches: Vec<StreamBatch>,
        envelopes: Vec<Result<(), StoreError>>,
    ) -> Reply {
        let now = prepare::now();
        let mut mine = Pending::default();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut position = locked.head + 1 + group.events.len() as u64;
        let conn = self.conn.as_ref().ok_or_else(|| {
            MultiAppendError::general(StoreError::Unavailable("no connection".into()))
        })?;
        for (i, (batch, envelope)) in batches.into_iter().zip(envelopes).enumerate() {
            let at = |e| MultiAppendError::at(i, e);
            envelope.map_err(at)?;
            if let Some(outcome) = Self::deduplicate(&batch, locked, [group, &mine]).map_err(at)? {
                outcomes.push(outcome);
                continue;
            }
            let current = mine
                .versions
                .get(&batch.stream)
                .or_else(|| group.versions.get(&batch.stream))
                .copied()
                .or_else(|| locked.versions.get(&batch.stream).copied().flatten());
            prepare::check_expected(&batch.stream, batch.expected, current).map_err(at)?;
            let first_version = current.map_or(0, |v| v + 1);
            let first_position = position;
            let recorded: Vec<RecordedEvent> = batch
                .events
                .into_iter()
                .enumerate()
                .map(|(k, ev)| {
                    let r =
                        prepare::assign(&batch.stream, ev, first_version + k as u64, position, now);
                    position += 1;
                    r
                })
                .collect();
            let view = PgView {
                rt: &self.rt,
                client: &conn.client,
                shared: &self.shared,
                group: &group.events,
                request: &mine.events,
            };
            self.validate(&view, &batch.stream, &recorded).map_err(at)?;
            let last = recorded.len() as u64 - 1;
            outcomes.push(AppendOutcome {
                first_position,
                last_position: first_position + last,
                next_expected_version: first_version + last,
            });
            mine.push_run(recorded);
        }
        for run in &mine.runs {
            let batch = &mine.events[run.clone()];
            if catch_unwind(AssertUnwindSafe(|| self.validator.applied(batch))).is_err() {
                tracing::error!("the append validator panicked in `applied`");
            }
        }
        group.absorb(mine);
        Ok(outcomes)
    }
}

/// The group as the insert's column arrays.
struct Columns {
    positions: Vec<i64>,
    ids: Vec<Uuid>,
    streams: Vec<String>,
    versions: Vec<i64>,
    types: Vec<String>,
    records: Vec<Vec<u8>>,
    crcs: Vec<i32>,
    hashes: Vec<Vec<u8>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Columns {
        Columns {
            positions: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            streams: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            records: Vec::with_capacity(n),
            crcs: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, ev: &RecordedEvent, record: Vec<u8>, hash: [u8; 32]) {
        self.positions.push(ev.position as i64);
        self.ids.push(ev.id);
        self.streams.push(ev.stream.clone());
        self.versions.push(ev.version as i64);
        self.types.push(ev.event_type.clone());
        self.crcs.push(crc32fast::hash(&record) as i32);
        self.records.push(record);
        self.hashes.push(hash.to_vec());
    }
}
