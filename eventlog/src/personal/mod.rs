//! Personal data in an immutable log (SPEC §7): [`Sealed`], an [`EventStore`] in front of
//! another, seals the personal fields of every event on its way in, each with the key of its
//! person (customer or lead), and opens them on every way out; destroying a person's key
//! erases its personal data from every read while the log, and its hash chain, stay as they
//! were.
//!
//! - [`fields`]: which fields are personal, and whose (a deal's notes are its customer's).
//! - [`cipher`]: one field sealed: AES-256-GCM with a synthetic nonce, so that an
//!   event sent again seals to the same bytes (idempotent appends and imports still work).
//! - [`keys`]: the [`KeyStore`] trait, beside the log and never in it: a file of its own in
//!   the sled data directory ([`KeyFile`]), a table of its own in PostgreSQL (`PgKeys`).
//! - here: the wrapper. Appends: the keys of the persons named are created durably if new, the fields sealed,
//!   then the inner store appends (its validator and idempotency see the sealed form, which
//!   passes and fails the domain's rules exactly as the text would: blank and mistyped
//!   values are not sealed). Reads: a sealed field opens to its text, or reads
//!   [`ERASED`] once its key is destroyed; a field written before encryption is text and
//!   stays so. [`Sealed::erase`]: checks, destroys the key, appends `PersonalDataErased` to
//!   the person's stream and `PersonalDataErasureAudited` to `org-access`, atomically.
//!
//! After an erasure nothing about that person may carry personal data again (the rule
//! `person.erased_no_personal_data`), except an event already in the log sent again: it is
//! recognised by its id and its clear fields, and adds nothing.

pub mod cipher;
pub mod fields;
mod key_file;
pub mod keys;
mod stored;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::data::EventData;
use domain::rules::PERSON_ERASED_NO_DATA;
use domain::{ExpectedVersion, ProposedEvent, RecordedEvent, Rejection};
use futures::StreamExt;
use serde_json::Value;

pub use cipher::PersonKey;
pub use fields::{personal_fields, ERASED};
pub use key_file::{KeyFile, FILE_NAME as KEY_FILE_NAME};
pub use keys::{KeyState, KeyStore, MemoryKeys};

use crate::{
    AppendOutcome, EventStore, Filter, MultiAppendError, StoreError, StoreHealth, StreamBatch,
};

/// The org stream that records who erased whom (as it does tokens issued and revoked).
pub const AUDIT_STREAM: &str = "org-access";

/// How many deal → customer links the wrapper remembers before it starts afresh.
const DEAL_CACHE: usize = 100_000;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// The person's stream (`customer-C-1`, `lead-L-1`).
    pub person: String,
    /// The position of its `PersonalDataErased`.
    pub position: u64,
    /// How many events held personal data of the person (its own and its deals').
    pub events: u64,
    /// Which fields they held, sorted.
    pub fields: Vec<String>,
}

/// Why an erasure was not done.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("{0} is not a customer or lead stream")]
    NotAPerson(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("the personal data of {person} is already erased (PersonalDataErased at position {position})")]
    AlreadyErased { person: String, position: u64 },
    #[error(
        "{person} has personal data written before the log encrypted it ({} event(s), the \
         first at position {}): the log is never rewritten, so destroying a key would not \
         erase it; nothing was changed",
        positions.len(),
        positions.first().copied().unwrap_or_default()
    )]
    WrittenInClear { person: String, positions: Vec<u64> },
    #[error("reason must not be blank")]
    BlankReason,
    #[error("this store does not keep personal data sealed")]
    Unsupported,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// An [`EventStore`] that seals personal data before `inner` sees it (see the module doc).
pub struct Sealed {
    inner: Arc<dyn EventStore>,
    opener: Opener,
    /// deal stream → its customer's stream.
    deals: Mutex<HashMap<String, String>>,
    /// Deals opened by appends handed to `inner` and not answered yet (deal stream → its
    /// customer's stream, and how many such appends open it): the log's reads see only what
    /// is durable, so an event about a deal opened by an append still in flight (a bulk
    /// import's chunk before, a client's append beside) would otherwise find no customer to
    /// seal its personal data for (see [`InFlight`]).
    in_flight: Mutex<HashMap<String, (String, usize)>>,
    /// Checked appends reach the inner store in the order they were called (each names the
    /// position the previous one ends at): taken while a batch is sealed and handed over.
    checked_order: tokio::sync::Mutex<()>,
}

/// The read side (shared with subscriptions).
#[derive(Clone)]
struct Opener {
    keys: Arc<dyn KeyStore>,
    /// Whether free text (`summary`, `note`) is opened too; the read model's view leaves it
    /// sealed: the model never keeps it (timelines and replays read it from the log).
    free_text: bool,
}

fn rejected(index: usize, r: Rejection) -> MultiAppendError {
    MultiAppendError::at(index, StoreError::Rejected(r))
}

/// Whether `ev` has a sealed value among its personal fields (without decoding its data when
/// it is still in its stored form).
fn has_sealed(ev: &RecordedEvent, fields: &[&str]) -> bool {
    if fields.is_empty() {
        return false;
    }
    match ev.data.undecoded() {
        Some(bytes) => memchr::memmem::find(bytes, cipher::PREFIX.as_bytes()).is_some(),
        None => fields.iter().any(|f| {
            ev.data
                .value()
                .get(*f)
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(cipher::PREFIX))
        }),
    }
}

/// The persons whose keys sealed some of `fields` of `ev`.
fn owners_of(ev: &RecordedEvent, fields: &'static [&'static str]) -> Vec<String> {
    match ev.data.undecoded() {
        Some(bytes) => stored::entries(bytes)
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| fields.contains(k))
            .filter_map(|(_, raw)| stored::text(raw).and_then(cipher::owner))
            .map(String::from)
            .collect(),
        None => fields::sealed_fields(fields, ev.data.value())
            .into_iter()
            .map(|(_, o)| o.to_string())
            .collect(),
    }
}

/// The text of the sealed `value` of `field`, or [`ERASED`].
fn open_field(
    keys: &HashMap<&str, &KeyState>,
    ev: &RecordedEvent,
    field: &str,
    value: &str,
) -> Result<String, StoreError> {
    let owner = cipher::owner(value).unwrap_or_default();
    match keys.get(owner) {
        Some(KeyState::Live(k)) => {
            cipher::open(k, &ev.id, field, value).map_err(|e| StoreError::Corrupt {
                position: ev.position,
                reason: format!("data.{field} does not open with the key of {owner} ({e:?})"),
            })
        }
        Some(KeyState::Erased) => Ok(ERASED.to_string()),
        _ => Err(StoreError::Corrupt {
            position: ev.position,
            reason: format!(
                "data.{field} is sealed with the key of {owner}, which the key store does not \
                 have (a key file or table lost, or from another store?)"
            ),
        }),
    }
}

/// `ev` with its sealed fields opened.
fn open_event(
    ev: &mut RecordedEvent,
    fields: &[&'static str],
    keys: &HashMap<&str, &KeyState>,
) -> Result<(), StoreError> {
    if let Some(bytes) = ev.data.undecoded() {
        // In the stored form: no `Value` built.
        let Some(entries) = stored::entries(bytes) else {
            return Ok(());
        };
        let mut replace = vec![None; entries.len()];
        for (slot, (key, raw)) in replace.iter_mut().zip(&entries) {
            if let Some(text) = stored::text(raw).filter(|_| fields.contains(key)) {
                if cipher::owner(text).is_some() {
                    *slot = Some(open_field(keys, ev, key, text)?);
                }
            }
        }
        let out = stored::rebuild(&entries, &replace, bytes.len());
        ev.data = domain::EventData::from_encoded(&out)
            .map(|(d, _)| d)
            .map_err(|e| StoreError::Corrupt {
                position: ev.position,
                reason: format!("data with its personal fields opened: {e}"),
            })?;
        return Ok(());
    }
    let mut data: Value = std::mem::take(&mut ev.data).into_inner();
    if let Value::Object(map) = &mut data {
        for f in fields {
            if let Some(Value::String(s)) = map.get_mut(*f) {
                if cipher::owner(s).is_some() {
                    *s = open_field(keys, ev, f, s)?;
                }
            }
        }
    }
    ev.data = data.into();
    Ok(())
}

impl Opener {
    /// The fields this opener opens of `event_type` on `stream`.
    fn fields(&self, stream: &str, event_type: &str) -> &'static [&'static str] {
        match personal_fields(stream, event_type) {
            ["summary"] | ["note"] if !self.free_text => &[],
            fields => fields,
        }
    }

    /// Opens the sealed fields of `events` (in place).
    async fn open(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        let mut wanted = Vec::new();
        let mut persons: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for (i, ev) in events.iter().enumerate() {
            if ev.event_type == "PersonalDataErased" {
                self.keys.forget(&ev.stream);
            }
            let fields = self.fields(&ev.stream, &ev.event_type);
            if !has_sealed(ev, fields) {
                continue;
            }
            for owner in owners_of(ev, fields) {
                if !seen.contains(&owner) {
                    seen.insert(owner.clone());
                    persons.push(owner);
                }
            }
            wanted.push(i);
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let states = self.keys.for_reading(&persons).await?;
        let keys: HashMap<&str, &KeyState> =
            persons.iter().map(String::as_str).zip(&states).collect();
        for i in wanted {
            let ev = &mut events[i];
            let fields = self.fields(&ev.stream, &ev.event_type);
            open_event(ev, fields, &keys)?;
        }
        Ok(())
    }

    async fn open_one(&self, mut ev: RecordedEvent) -> Result<RecordedEvent, StoreError> {
        self.open(std::slice::from_mut(&mut ev)).await?;
        Ok(ev)
    }
}

/// The clear (not personal) fields of two data objects are the same.
fn same_clear_fields(fields: &[&str], existing: &Value, proposed: &Value) -> bool {
    let (Value::Object(e), Value::Object(p)) = (existing, proposed) else {
        return false;
    };
    e.len() == p.len()
        && e.iter().all(|(k, v)| {
            p.get(k)
                .is_some_and(|pv| fields.contains(&k.as_str()) || pv == v)
        })
}

impl Sealed {
    pub fn new(inner: Arc<dyn EventStore>, keys: Arc<dyn KeyStore>) -> Sealed {
        Sealed {
            inner,
            opener: Opener {
                keys,
                free_text: true,
            },
            deals: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            checked_order: tokio::sync::Mutex::new(()),
        }
    }

    /// The store behind this one (its events as stored: sealed).
    pub fn inner(&self) -> &Arc<dyn EventStore> {
        &self.inner
    }

    /// The keys of persons.
    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.opener.keys
    }

    /// The customer stream of `deal`, from a `DealOpened` of this append, the cache or the log.
    async fn customer_of_deal(
        &self,
        deal: &str,
        opened: &HashMap<String, String>,
    ) -> Result<Option<String>, StoreError> {
        if let Some(c) = opened.get(deal) {
            return Ok(Some(c.clone()));
        }
        if let Some((c, _)) = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(deal)
        {
            return Ok(Some(c.clone()));
        }
        if let Some(c) = self
            .deals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(deal)
        {
            return Ok(Some(c.clone()));
        }
        let first = self.inner.read_stream(deal, 0, 1).await?;
        let Some(customer) = first
            .first()
            .and_then(|ev| customer_opened(ev.event_type.as_str(), &ev.data))
        else {
            return Ok(None);
        };
        self.remember_deals([(deal.to_string(), customer.clone())]);
        Ok(Some(customer))
    }

    /// Seals the personal fields of `batches` in place; returns the persons whose erasure
    /// they carry (only `by_import` may carry one) and the deals they open.
    async fn seal(
        &self,
        batches: &mut [StreamBatch],
        by_import: bool,
    ) -> Result<Sealing, MultiAppendError> {
        let mut erased = Vec::new();
        let mut opened = HashMap::new();
        for (i, b) in batches.iter().enumerate() {
            for (j, ev) in b.events.iter().enumerate() {
                if ev.event_type == "PersonalDataErased" {
                    if !by_import {
                        return Err(rejected(
                            i,
                            PERSON_ERASED_NO_DATA
                                .reject(
                                    "type",
                                    "\"PersonalDataErased\"",
                                    "PersonalDataErased is appended by the erase command \
                                     (POST /v1/customers/{id}/erase, /v1/leads/{id}/erase, \
                                     dealtrail erase), which destroys the key first",
                                )
                                .at(j),
                        ));
                    }
                    erased.push(b.stream.clone());
                }
                if let Some(c) = customer_opened(&ev.event_type, &ev.data) {
                    if b.stream.starts_with("deal-") {
                        opened.insert(b.stream.clone(), c);
                    }
                }
            }
        }
        // (batch, event, owner) of every event with something to seal.
        let mut todo = Vec::new();
        let mut persons: Vec<String> = Vec::new();
        // person → index into `persons` (a bulk import's request names hundreds of them).
        let mut person_at: HashMap<String, usize> = HashMap::new();
        for (i, b) in batches.iter_mut().enumerate() {
            for (j, ev) in b.events.iter_mut().enumerate() {
                let fields = personal_fields(&b.stream, &ev.event_type);
                if fields::fields_to_seal(fields, &ev.data).is_empty() {
                    continue;
                }
                let owner = if fields::is_person(&b.stream) {
                    Some(b.stream.clone())
                } else {
                    self.customer_of_deal(&b.stream, &opened)
                        .await
                        .map_err(MultiAppendError::general)?
                };
                let Some(owner) = owner else {
                    // A deal that does not exist: the rules refuse the batch anyway. A checked
                    // append runs no rules, so it is refused here: never written in clear.
                    if by_import {
                        return Err(MultiAppendError::at(
                            i,
                            StoreError::Invalid(format!(
                                "event {j}: {} is not opened in the log nor by an append in \
                                 flight: its {} cannot be sealed for its customer",
                                b.stream,
                                fields.join(", ")
                            )),
                        ));
                    }
                    continue;
                };
                // (index into `persons`: one copy of each person, not one per event)
                let p = match person_at.get(&owner) {
                    Some(p) => *p,
                    None => {
                        person_at.insert(owner.clone(), persons.len());
                        persons.push(owner);
                        persons.len() - 1
                    }
                };
                todo.push((i, j, p));
            }
        }
        let done = Sealing { erased, opened };
        if todo.is_empty() {
            return Ok(done);
        }
        let states = self
            .opener
            .keys
            .for_writing(&persons)
            .await
            .map_err(MultiAppendError::general)?;
        for (i, j, p) in todo {
            let (owner, StreamBatch { stream, events, .. }) = (&persons[p], &mut batches[i]);
            let ev = &mut events[j];
            let fields = personal_fields(stream, &ev.event_type);
            match states.get(p) {
                Some(KeyState::Live(k)) => {
                    fields::seal_data(k, owner, ev.id.as_ref(), fields, &mut ev.data)
                }
                _ => {
                    // Erased: only an event already in the log may come again; it is given
                    // the stored (sealed) data, so the store sees the same event.
                    let existing = match ev.id {
                        Some(id) => self
                            .inner
                            .event_by_id(id)
                            .await
                            .map_err(MultiAppendError::general)?,
                        None => None,
                    };
                    match existing {
                        Some(e)
                            if e.stream == *stream
                                && e.event_type == ev.event_type
                                && same_clear_fields(fields, e.data.value(), &ev.data) =>
                        {
                            ev.data = e.data;
                        }
                        _ => {
                            return Err(rejected(
                                i,
                                PERSON_ERASED_NO_DATA
                                    .reject(
                                        format!("data.{}", fields[0]),
                                        "(personal data)",
                                        format!(
                                            "the personal data of {owner} was erased: no event \
                                             about it may carry {} again",
                                            fields.join(", ")
                                        ),
                                    )
                                    .at(j),
                            ))
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// Destroys the keys of the persons whose `PersonalDataErased` was just appended (an
    /// import or copy of a log with erasures).
    async fn destroy_all(&self, persons: &[String]) -> Result<(), StoreError> {
        for p in persons {
            self.opener.keys.destroy(p).await?;
        }
        Ok(())
    }

    /// Erases the personal data of `person` (a `customer-…` or `lead-…` stream): see the
    /// module doc. `actor` is who asked (recorded in both events).
    pub async fn erase(
        &self,
        person: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Erasure, EraseError> {
        if !fields::is_person(person) {
            return Err(EraseError::NotAPerson(person.to_string()));
        }
        if reason.trim().is_empty() {
            return Err(EraseError::BlankReason);
        }
        let own = self.inner.read_stream(person, 0, usize::MAX).await?;
        if own.is_empty() {
            return Err(EraseError::NotFound(person.to_string()));
        }
        if let Some(e) = own.iter().find(|e| e.event_type == "PersonalDataErased") {
            return Err(EraseError::AlreadyErased {
                person: person.to_string(),
                position: e.position,
            });
        }
        let mut touched = 0u64;
        let mut names = BTreeSet::new();
        let mut in_clear = Vec::new();
        let mut count = |ev: &RecordedEvent, in_deal_of_person: bool| {
            let fields = personal_fields(&ev.stream, &ev.event_type);
            if fields.is_empty() {
                return;
            }
            let data = ev.data.value();
            let mine: Vec<&str> = fields::sealed_fields(fields, data)
                .into_iter()
                .filter(|(_, o)| *o == person)
                .map(|(f, _)| f)
                .collect();
            if !mine.is_empty() {
                touched += 1;
                names.extend(mine);
            }
            if (fields::is_person(&ev.stream) || in_deal_of_person)
                && !fields::clear_fields(fields, data).is_empty()
            {
                in_clear.push(ev.position);
            }
        };
        for ev in &own {
            count(ev, false);
        }
        if person.starts_with("customer-") {
            let filter = Filter {
                types: [
                    "DealOpened",
                    "ActivityLogged",
                    "CompetitorNoted",
                    "DealLost",
                ]
                .map(String::from)
                .to_vec(),
                stream_prefix: Some("deal-".into()),
            };
            let mut deals = HashSet::new();
            let mut from = 1;
            loop {
                let page = self.inner.read_all(from, 4096, &filter).await?;
                let Some(last) = page.last() else { break };
                from = last.position + 1;
                for ev in &page {
                    if ev.event_type == "DealOpened" {
                        if customer_opened("DealOpened", &ev.data).as_deref() == Some(person) {
                            deals.insert(ev.stream.clone());
                        }
                        continue;
                    }
                    count(ev, deals.contains(&ev.stream));
                }
            }
        }
        if !in_clear.is_empty() {
            return Err(EraseError::WrittenInClear {
                person: person.to_string(),
                positions: in_clear,
            });
        }
        self.opener.keys.destroy(person).await?;
        let event = |stream: &str, event_type: &str, data: Value| StreamBatch {
            stream: stream.to_string(),
            expected: ExpectedVersion::Any,
            events: vec![ProposedEvent {
                id: Some(uuid::Uuid::now_v7()),
                event_type: event_type.to_string(),
                occurred_at: None,
                actor: Some(actor.to_string()),
                data: data.into(),
                metadata: None,
                recorded_at: None,
            }],
        };
        let outcomes = self
            .inner
            .append_multi(vec![
                event(
                    person,
                    "PersonalDataErased",
                    serde_json::json!({ "reason": reason }),
                ),
                event(
                    AUDIT_STREAM,
                    "PersonalDataErasureAudited",
                    serde_json::json!({ "person": person, "reason": reason }),
                ),
            ])
            .await
            .map_err(|e| e.error)?;
        Ok(Erasure {
            person: person.to_string(),
            position: outcomes[0].first_position,
            events: touched,
            fields: names.into_iter().map(String::from).collect(),
        })
    }
}

/// The customer stream a `DealOpened` names; `data` is decoded only for that type (an
/// import's data is still in its binary form).
fn customer_opened(event_type: &str, data: &EventData) -> Option<String> {
    if event_type != "DealOpened" {
        return None;
    }
    data.str_field("customer_id")
        .map(|c| format!("customer-{c}"))
}

/// What sealing a request found.
struct Sealing {
    /// The persons whose erasure the request carries.
    erased: Vec<String>,
    /// The deals it opens: deal stream → its customer's stream.
    opened: HashMap<String, String>,
}

impl Sealed {
    /// Makes the deals a request opens known to [`Sealed::customer_of_deal`] until the request
    /// is answered (see `in_flight`).
    /// (Most requests open no deal: they take no lock here, nor when answered.)
    fn in_flight(&self, opened: HashMap<String, String>) -> InFlight<'_> {
        if opened.is_empty() {
            return InFlight {
                sealed: self,
                opened,
            };
        }
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for (deal, customer) in &opened {
            let entry = map.entry(deal.clone()).or_insert((String::new(), 0));
            // The latest opening counts (an earlier one in flight may yet be refused).
            entry.0.clone_from(customer);
            entry.1 += 1;
        }
        InFlight {
            sealed: self,
            opened,
        }
    }

    /// A request that opened `deals` (deal → customer) is no longer in flight.
    fn forget_in_flight(&self, deals: &HashMap<String, String>) {
        if deals.is_empty() {
            return;
        }
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for deal in deals.keys() {
            if let Some(entry) = map.get_mut(deal) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    map.remove(deal);
                }
            }
        }
    }

    /// Puts deals (deal stream → its customer's stream) in the cache of deals, emptied once
    /// it would hold more than [`DEAL_CACHE`].
    fn remember_deals(&self, opened: impl IntoIterator<Item = (String, String)>) {
        let mut deals = self.deals.lock().unwrap_or_else(|p| p.into_inner());
        for (deal, customer) in opened {
            if deals.len() >= DEAL_CACHE {
                deals.clear();
            }
            deals.insert(deal, customer);
        }
    }
}

/// The deals of a request in flight (see [`Sealed::in_flight`]); forgotten when dropped,
/// whether the request was written, refused or given up.
struct InFlight<'a> {
    sealed: &'a Sealed,
    opened: HashMap<String, String>,
}

impl InFlight<'_> {
    /// The request was written (durably): its deals go to the cache of deals, where the next
    /// requests find them without reading the log.
    fn answered(mut self) {
        let opened = std::mem::take(&mut self.opened);
        if !opened.is_empty() {
            self.sealed.forget_in_flight(&opened);
            self.sealed.remember_deals(opened);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.sealed.forget_in_flight(&self.opened);
    }
}

#[async_trait]
impl EventStore for Sealed {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut batches = [StreamBatch {
            stream: stream.to_string(),
            expected,
            events,
        }];
        let sealing = self.seal(&mut batches, false).await.map_err(|e| e.error)?;
        let in_flight = self.in_flight(sealing.opened);
        let [b] = batches;
        let out = self.inner.append(stream, b.expected, b.events).await?;
        in_flight.answered();
        Ok(out)
    }

    async fn append_multi(
        &self,
        mut batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let sealing = self.seal(&mut batches, false).await?;
        let in_flight = self.in_flight(sealing.opened);
        let out = self.inner.append_multi(batches).await?;
        in_flight.answered();
        Ok(out)
    }

    async fn append_checked(
        &self,
        mut batches: Vec<StreamBatch>,
        checked_at: u64,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let order = self.checked_order.lock().await;
        let Sealing { erased, opened } = self.seal(&mut batches, true).await?;
        // Known as in flight before the next call may seal (it waits for `order`).
        let in_flight = self.in_flight(opened);
        let mut append = self.inner.append_checked(batches, checked_at);
        // Polled once in order: a store takes the request in that first poll (the sled and
        // PostgreSQL writers' queues), so the next call may go ahead while this one is written.
        let first = futures::poll!(&mut append);
        drop(order);
        let out = match first {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => append.await,
        }?;
        in_flight.answered();
        self.destroy_all(&erased)
            .await
            .map_err(MultiAppendError::general)?;
        Ok(out)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream, from_version, limit).await?;
        self.opener.open(&mut events).await?;
        Ok(events)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_all(from_position, limit, filter).await?;
        self.opener.open(&mut events).await?;
        Ok(events)
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        self.inner.last_position().await
    }

    async fn chain_hash_at(&self, position: u64) -> Result<Option<[u8; 32]>, StoreError> {
        self.inner.chain_hash_at(position).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        match self.inner.event_by_id(id).await? {
            Some(ev) => Ok(Some(self.opener.open_one(ev).await?)),
            None => Ok(None),
        }
    }

    async fn events_by_ids(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
        let found = self.inner.events_by_ids(ids).await?;
        let mut present: Vec<RecordedEvent> = Vec::new();
        let mut slots = Vec::with_capacity(found.len());
        for ev in found {
            slots.push(ev.is_some());
            present.extend(ev);
        }
        self.opener.open(&mut present).await?;
        let mut present = present.into_iter();
        Ok(slots
            .into_iter()
            .map(|some| if some { present.next() } else { None })
            .collect())
    }

    fn health(&self) -> StoreHealth {
        self.inner.health()
    }

    fn subscribe(
        &self,
        from_position: u64,
        filter: Filter,
    ) -> futures::stream::BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let opener = self.opener.clone();
        self.inner
            .subscribe(from_position, filter)
            .then(move |next| {
                let opener = opener.clone();
                async move {
                    match next {
                        Ok(ev) => opener.open_one(ev).await,
                        Err(e) => Err(e),
                    }
                }
            })
            .boxed()
    }

    fn projection_view(&self) -> Option<Arc<dyn EventStore>> {
        Some(Arc::new(Sealed {
            inner: self.inner.clone(),
            opener: Opener {
                keys: self.opener.keys.clone(),
                free_text: false,
            },
            deals: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            checked_order: tokio::sync::Mutex::new(()),
        }))
    }

    async fn erase_personal_data(
        &self,
        person: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Erasure, EraseError> {
        self.erase(person, reason, actor).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use futures::stream::BoxStream;
    use serde_json::{json, Value};

    use super::cipher::PREFIX;
    use super::keys::MemoryKeys;
    use super::Sealed;
    use crate::memory::MemoryStore;
    use crate::{
        AppendOutcome, EventStore, ExpectedVersion, Filter, MultiAppendError, ProposedEvent,
        RecordedEvent, StoreError, StreamBatch,
    };

    /// A store whose checked appends wait for the test to let them through (one permit each),
    /// and whose reads see only what went through: as a log's reads see only what is durable.
    struct Gated {
        inner: MemoryStore,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl EventStore for Gated {
        async fn append(
            &self,
            stream: &str,
            expected: ExpectedVersion,
            events: Vec<ProposedEvent>,
        ) -> Result<AppendOutcome, StoreError> {
            self.inner.append(stream, expected, events).await
        }

        async fn append_multi(
            &self,
            batches: Vec<StreamBatch>,
        ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
            self.inner.append_multi(batches).await
        }

        async fn append_checked(
            &self,
            batches: Vec<StreamBatch>,
            checked_at: u64,
        ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
            let permit = self.gate.acquire().await;
            permit.map(|p| p.forget()).ok();
            self.inner.append_checked(batches, checked_at).await
        }

        async fn read_stream(
            &self,
            stream: &str,
            from_version: u64,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.inner.read_stream(stream, from_version, limit).await
        }

        async fn read_all(
            &self,
            from_position: u64,
            limit: usize,
            filter: &Filter,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.inner.read_all(from_position, limit, filter).await
        }

        async fn last_position(&self) -> Result<u64, StoreError> {
            self.inner.last_position().await
        }

        async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
            self.inner.stream_version(stream).await
        }

        async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
            self.inner.event_by_id(id).await
        }

        fn subscribe(
            &self,
            from_position: u64,
            filter: Filter,
        ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
            self.inner.subscribe(from_position, filter)
        }
    }

    fn batch(stream: &str, ty: &str, data: Value) -> Vec<StreamBatch> {
        vec![StreamBatch {
            stream: stream.into(),
            expected: ExpectedVersion::Any,
            events: vec![serde_json::from_value(json!({"type": ty, "data": data})).unwrap()],
        }]
    }

    fn gated() -> (Arc<Gated>, Sealed) {
        let gated = Arc::new(Gated {
            inner: MemoryStore::new(),
            gate: tokio::sync::Semaphore::new(0),
        });
        let sealed = Sealed::new(gated.clone(), Arc::new(MemoryKeys::new()));
        (gated, sealed)
    }

    /// A bulk import hands a chunk to the store before the one before it is durable: a deal's
    /// note in one chunk, the deal opened in the chunk before, still in flight. The note is
    /// sealed for the deal's customer all the same (it was written in clear: the customer was
    /// looked up in the log, which does not show what is not durable yet).
    #[tokio::test]
    async fn a_note_on_a_deal_opened_by_a_checked_append_in_flight_is_sealed() {
        let (gated, sealed) = gated();
        let registered = batch(
            "customer-C1",
            "CustomerRegistered",
            json!({"name": "Zhuge"}),
        );
        sealed.append_multi(registered).await.unwrap();
        let opened = batch(
            "deal-D1",
            "DealOpened",
            json!({"customer_id": "C1", "owner": "r", "title": "t", "amount": 1}),
        );
        let mut first = Box::pin(sealed.append_checked(opened, 1));
        assert!(
            futures::poll!(&mut first).is_pending(),
            "let through already"
        );
        let note = json!({"reason": "price", "note": "SECRET-NOTE"});
        let mut second = Box::pin(sealed.append_checked(batch("deal-D1", "DealLost", note), 2));
        assert!(
            futures::poll!(&mut second).is_pending(),
            "let through already"
        );
        gated.gate.add_permits(2);
        first.await.unwrap();
        second.await.unwrap();
        let stored = gated.inner.read_stream("deal-D1", 0, 10).await.unwrap();
        let kept = stored[1].data.value()["note"].as_str().unwrap().to_string();
        assert!(kept.starts_with(PREFIX), "written in clear: {kept}");
        let read = sealed.read_stream("deal-D1", 0, 10).await.unwrap();
        assert_eq!(read[1].data.value()["note"], "SECRET-NOTE");
        // Answered: the deal is in the cache of deals, no longer in flight.
        assert!(sealed.in_flight.lock().unwrap().is_empty());
        assert_eq!(sealed.deals.lock().unwrap()["deal-D1"], "customer-C1");
    }

    /// A checked append with personal data about a deal that nothing opened is refused, never
    /// written in clear (an unchecked one is refused by the domain's rules).
    #[tokio::test]
    async fn a_checked_note_on_a_deal_nobody_opened_is_refused() {
        let (gated, sealed) = gated();
        gated.gate.add_permits(1);
        let note = json!({"reason": "price", "note": "SECRET-NOTE"});
        let err = sealed
            .append_checked(batch("deal-D9", "DealLost", note), 0)
            .await
            .unwrap_err();
        assert_eq!(err.index, Some(0));
        assert!(
            err.error.to_string().contains("cannot be sealed"),
            "{}",
            err.error
        );
        assert_eq!(gated.inner.last_position().await.unwrap(), 0);
        assert!(sealed.in_flight.lock().unwrap().is_empty());
    }
}
