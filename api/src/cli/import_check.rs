//! The check of `import` (all of its dry run): every event checked against the log and the
//! domain's rules, against the store's state plus the events before it, before anything is
//! written. A refused event refuses the whole import: nothing of it is written.
//!
//! The source is read once and not kept: what stays is one bit per event (new, or already
//! in the log / a repeat within the import), per event id its line and a digest of its
//! content (to tell a repeat within the import from a conflict), and the folded state of
//! every stream the import touches (what the rules read). The log is asked about ids a block
//! at a time ([`EventStore::events_by_ids`]), and not at all when it is empty; a stream is
//! read from the log the first time the import names it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

use chrono::{DateTime, Utc};
use domain::data::{CodecError, EventData, EventMetadata, Head, Reader};
use domain::rules::{check_batch_owned, Context, Customers};
use domain::state::{fold_stream, CustomerState, OrgFold, OrgState, StreamState};
use domain::RecordedEvent;
use eventlog::{EventStore, Filter, DEFAULT_ACTOR};
use serde_json::Value;
use uuid::Uuid;

use super::import::{proposed, ImportLine, Line, Source};
use super::CliError;

/// How many events' ids are looked up in the log at once.
const BLOCK: usize = 4096;

/// What the check found: which events are new, how many are already in the log (or repeat
/// an earlier event of the import), and the new events by type.
pub struct Checked {
    /// Events read.
    pub events: usize,
    pub already_present: usize,
    pub new_by_type: BTreeMap<String, usize>,
    /// The log's last position the events were checked against.
    pub at: u64,
    /// One bit per event, in the source's order: set when it is new.
    new: Bits,
    /// One bit per event: set when it is new and the first of its stream (the stream was not
    /// in the log when checked, nor earlier in the source).
    opens: Bits,
}

impl Checked {
    /// Whether the `i`-th event of the source is to be appended.
    pub fn is_new(&self, i: usize) -> bool {
        self.new.get(i)
    }

    /// Whether the `i`-th event of the source is new and opens its stream (the append may
    /// then say `ExpectedVersion::NoStream`, which the store takes at its word).
    pub fn opens_stream(&self, i: usize) -> bool {
        self.opens.get(i)
    }

    /// Records the next event (the `events`-th): `new`, and whether it `opens` its stream.
    fn push(&mut self, new: bool, opens: bool) {
        let i = self.events;
        self.new.set(i, new);
        self.opens.set(i, new && opens);
        self.events += 1;
    }
}

/// A bit set, one bit per event, set in event order.
#[derive(Default)]
pub(super) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Bits 0..64 in the first word, and so on.
    #[cfg(test)]
    pub(super) fn from_words(words: Vec<u64>) -> Bits {
        Bits { words }
    }

    pub(super) fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i` to `bit`; `i` is at most one past the last bit set so far.
    pub(super) fn set(&mut self, i: usize, bit: bool) {
        if self.words.len() <= i / 64 {
            self.words.push(0);
        }
        if bit {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }
}

/// Every event of the log's `org-` streams, in log order.
async fn org_events(store: &dyn EventStore) -> Result<Vec<RecordedEvent>, CliError> {
    let mut events = Vec::new();
    let mut next = 1;
    let org_only = Filter {
        types: Vec::new(),
        stream_prefix: Some("org-".into()),
    };
    loop {
        let page = store.read_all(next, 10_000, &org_only).await?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        events.extend(page);
    }
    Ok(events)
}

/// The organisation as the log has it now: every `org-` stream folded in business order
/// ([`OrgState::fold`], as the rules fold it).
pub async fn org_state(store: &dyn EventStore) -> Result<OrgState, CliError> {
    Ok(OrgState::fold(&org_events(store).await?))
}

/// Checks every event of `source`; the error names the file, the line and the rule.
pub async fn check(
    store: &dyn EventStore,
    source: &dyn Source,
    now: DateTime<Utc>,
) -> Result<Checked, CliError> {
    let at = store.last_position().await?;
    let org = if at == 0 {
        OrgFold::default()
    } else {
        OrgFold::of(&org_events(store).await?)
    };
    let checker = Checker {
        store,
        now,
        empty: at == 0,
        org,
        streams: Streams::default(),
        seen: HashMap::default(),
        checked: Checked {
            events: 0,
            already_present: 0,
            new_by_type: BTreeMap::new(),
            at,
            new: Bits::default(),
            opens: Bits::default(),
        },
    };
    let bar = super::progress::bar(source.events_hint(), "checking");
    let checked = checker.all(source, &bar).await;
    bar.finish_and_clear();
    checked
}

impl Checker<'_> {
    /// Checks every event of `source`, a block at a time; `bar` counts them.
    async fn all(
        mut self,
        source: &dyn Source,
        bar: &indicatif::ProgressBar,
    ) -> Result<Checked, CliError> {
        let store = self.store;
        let mut lines = source.lines()?;
        let mut block: Vec<Line> = Vec::with_capacity(BLOCK);
        loop {
            let next = lines.next().transpose()?;
            let end = next.is_none();
            block.extend(next);
            if block.len() == BLOCK || (end && !block.is_empty()) {
                bar.inc(block.len() as u64);
                if self.empty {
                    for line in block.drain(..) {
                        self.check(line, None)?;
                    }
                } else {
                    let ids: Vec<Uuid> = block.iter().map(|l| l.event.id).collect();
                    let existing = store.events_by_ids(&ids).await?;
                    for (line, existing) in block.drain(..).zip(existing) {
                        self.load(&line.event.stream).await?;
                        if let Some(customer) = customer_of(&line.event) {
                            self.load(&format!("customer-{customer}")).await?;
                        }
                        self.check(line, existing)?;
                    }
                }
            }
            if end {
                break;
            }
        }
        Ok(self.checked)
    }
}

/// The customer a `DealOpened` names (the one stream besides its own that the rules read).
fn customer_of(l: &ImportLine) -> Option<&str> {
    if l.event_type == "DealOpened" && l.stream.starts_with("deal-") {
        l.data.str_field("customer_id")
    } else {
        None
    }
}

/// stream → (version of its last event, state after it); `None` version = no events yet.
type Streams = HashMap<String, (Option<u64>, StreamState), foldhash::fast::RandomState>;

struct Checker<'a> {
    store: &'a dyn EventStore,
    now: DateTime<Utc>,
    /// The log holds nothing: no need to ask it about ids or streams.
    empty: bool,
    /// The organisation, the import's org lines folded in business order as the rules do.
    org: OrgFold,
    streams: Streams,
    /// Event id → the line it first appeared on, and the digest of its content.
    seen: HashMap<Uuid, (usize, u64), foldhash::fast::RandomState>,
    checked: Checked,
}

impl Checker<'_> {
    /// Checks one event; `existing` is the log's event with its id, if any. The streams the
    /// rules read are loaded (see `load`), or the log is empty.
    fn check(&mut self, line: Line, existing: Option<RecordedEvent>) -> Result<(), CliError> {
        let Line {
            source,
            number,
            event: l,
        } = line;
        let at = |msg: String| CliError::refused(format!("{source}: line {number}: {msg}"));
        let digest = digest(&l);
        match self.seen.entry(l.id) {
            Entry::Occupied(first) => {
                let (first_line, first_digest) = *first.get();
                if first_digest != digest {
                    return Err(at(format!(
                        "event id {} already appears on line {first_line} with other content",
                        l.id
                    )));
                }
                self.checked.already_present += 1;
                self.checked.push(false, false);
                return Ok(());
            }
            Entry::Vacant(v) => {
                v.insert((number, digest));
            }
        }
        if let Some(existing) = existing {
            // The store's own test of a repeat (SPEC §1.1: other content, `occurred_at`,
            // actor or metadata included, is a conflict).
            if !eventlog::same_content(&l.stream, &proposed(&l), &existing) {
                return Err(at(format!(
                    "event id {} is already in the log (position {}) with other content",
                    l.id, existing.position
                )));
            }
            self.checked.already_present += 1;
            self.checked.push(false, false);
            return Ok(());
        }
        // The state is taken out of its slot and put back after, the stream's entry staying
        // where it is (a remove and an insert moved the entry out and in again).
        let (version, state) = match self.streams.get_mut(&l.stream) {
            Some((version, state)) => (*version, std::mem::replace(state, StreamState::Empty)),
            None => (None, StreamState::Empty),
        };
        let recorded_at = l.recorded_at.unwrap_or(self.now);
        let ImportLine {
            id,
            stream,
            event_type,
            occurred_at,
            actor,
            data,
            metadata,
            ..
        } = l;
        let ev = RecordedEvent {
            id,
            stream,
            schema_version: domain::schema::current_schema_version(&event_type),
            event_type,
            version: version.map_or(0, |v| v + 1),
            position: 0,
            occurred_at: occurred_at.unwrap_or(recorded_at),
            recorded_at,
            actor: actor.unwrap_or_else(|| DEFAULT_ACTOR.to_string()),
            data,
            metadata: metadata.unwrap_or_default(),
        };
        let batch = std::slice::from_ref(&ev);
        let customers = FoldedCustomers(&self.streams);
        let ctx = Context {
            org: self.org.state(),
            now: self.now,
            customers: &customers,
        };
        let next = check_batch_owned(&ctx, state, &ev.stream, batch).map_err(|mut r| {
            r.index = None;
            at(r.to_string())
        })?;
        if ev.stream.starts_with("org-") {
            self.org.apply(&ev);
        }
        match self.checked.new_by_type.get_mut(&ev.event_type) {
            Some(n) => *n += 1,
            None => {
                self.checked.new_by_type.insert(ev.event_type.clone(), 1);
            }
        }
        self.checked.push(true, version.is_none());
        self.streams.insert(ev.stream, (Some(ev.version), next));
        Ok(())
    }

    /// Folds `stream` from the store into `streams` unless it is there already.
    async fn load(&mut self, stream: &str) -> Result<(), CliError> {
        if !self.streams.contains_key(stream) {
            let state = if self.empty {
                (None, StreamState::Empty)
            } else {
                let events = self.store.read_stream(stream, 0, usize::MAX).await?;
                let version = events.last().map(|e| e.version);
                (version, fold_stream(stream, &events))
            };
            self.streams.insert(stream.to_string(), state);
        }
        Ok(())
    }
}

/// The customers the rules read, from the check's folded streams, nothing copied but what
/// is asked for.
struct FoldedCustomers<'a>(&'a Streams);

impl FoldedCustomers<'_> {
    fn with<T>(&self, id: &str, f: impl FnOnce(&CustomerState) -> T) -> Option<T> {
        self.0
            .get(&format!("customer-{id}"))
            .and_then(|(_, s)| s.as_customer())
            .map(f)
    }
}

impl Customers for FoldedCustomers<'_> {
    fn customer(&self, id: &str) -> Option<CustomerState> {
        self.with(id, CustomerState::clone)
    }

    fn owner(&self, id: &str) -> Option<Option<String>> {
        self.with(id, |c| c.owner.clone())
    }
}

/// A digest of what makes two events with one id the same event (`ImportLine::same_content`):
/// stream, type, data, metadata, `occurred_at` and actor. An object's entries are combined
/// in any order (their equality ignores order); a number's kind counts (`1` is not `1.0`),
/// as in `Value`'s equality. 64 bits: two different events of one id in one import pass for
/// the same one with a chance of 2⁻⁶⁴.
fn digest(l: &ImportLine) -> u64 {
    let mut h = hasher();
    l.stream.hash(&mut h);
    l.event_type.hash(&mut h);
    l.occurred_at
        .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
        .hash(&mut h);
    l.actor.hash(&mut h);
    data_hash(&l.data).hash(&mut h);
    l.metadata.as_ref().map(metadata_hash).hash(&mut h);
    h.finish()
}

/// The hasher of digests: foldhash's quality variant with a fixed seed (the standard
/// library's SipHash here took about 2% of an import's instructions).
fn hasher() -> impl Hasher {
    foldhash::quality::FixedState::default().build_hasher()
}

fn object_hash(m: &serde_json::Map<String, Value>) -> u64 {
    let mut object = ObjectHash::default();
    for (k, v) in m {
        object.add(k, value_hash(v));
    }
    object.finish()
}

/// The hash of an object, order-free: its entries' own hashes (key and value's hash), summed.
#[derive(Default)]
struct ObjectHash {
    len: usize,
    sum: u64,
}

impl ObjectHash {
    fn add(&mut self, key: &str, value: u64) {
        let mut e = hasher();
        key.hash(&mut e);
        value.hash(&mut e);
        self.len += 1;
        self.sum = self.sum.wrapping_add(e.finish());
    }

    fn finish(&self) -> u64 {
        let mut h = hasher();
        (b'o', self.len, self.sum).hash(&mut h);
        h.finish()
    }
}

/// [`value_hash`] of an event's data, walked in its binary form when it is still in it (an
/// import's spool): the same hash as of the decoded value, without building it.
fn data_hash(data: &EventData) -> u64 {
    match data.undecoded() {
        // Bytes that passed `EventData::from_encoded` walk without error; were they not to,
        // the decoded value's hash is the answer.
        Some(bytes) => stored_hash(&mut Reader::new(bytes)).unwrap_or_else(|_| value_hash(data)),
        None => value_hash(data),
    }
}

/// [`value_hash`] of the value at `r`, in the binary form.
fn stored_hash(r: &mut Reader<'_>) -> Result<u64, CodecError> {
    let mut h = hasher();
    match r.head()? {
        Head::Null => b'n'.hash(&mut h),
        Head::Bool(b) => (b'b', b).hash(&mut h),
        Head::Unsigned(u) => (b'u', u).hash(&mut h),
        Head::Negative(i) => (b'i', i).hash(&mut h),
        Head::Float(f) => (b'd', f.to_bits()).hash(&mut h),
        Head::Str(s) => (b's', s).hash(&mut h),
        Head::Array(n) => {
            (b'a', n).hash(&mut h);
            for _ in 0..n {
                stored_hash(r)?.hash(&mut h);
            }
        }
        Head::Object(n) => return stored_object_hash(r, n),
    }
    Ok(h.finish())
}

/// [`object_hash`] of the `n` entries of an object at `r`, in the binary form.
fn stored_object_hash(r: &mut Reader<'_>, n: usize) -> Result<u64, CodecError> {
    let mut object = ObjectHash::default();
    for _ in 0..n {
        let k = r.str()?;
        object.add(k, stored_hash(r)?);
    }
    Ok(object.finish())
}

/// [`object_hash`] of an event's metadata, walked in its binary form when it is still in it.
fn metadata_hash(metadata: &EventMetadata) -> u64 {
    let walked = metadata.undecoded().map(|bytes| {
        let mut r = Reader::new(bytes);
        let n = r.count()?;
        stored_object_hash(&mut r, n)
    });
    match walked {
        Some(Ok(h)) => h,
        _ => object_hash(metadata),
    }
}

fn value_hash(v: &Value) -> u64 {
    let mut h = hasher();
    match v {
        Value::Null => b'n'.hash(&mut h),
        Value::Bool(b) => (b'b', *b).hash(&mut h),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                (b'u', u).hash(&mut h);
            } else if let Some(i) = n.as_i64() {
                (b'i', i).hash(&mut h);
            } else {
                (b'd', n.as_f64().unwrap_or(f64::NAN).to_bits()).hash(&mut h);
            }
        }
        Value::String(s) => (b's', s).hash(&mut h),
        Value::Array(a) => {
            (b'a', a.len()).hash(&mut h);
            for x in a {
                value_hash(x).hash(&mut h);
            }
        }
        Value::Object(m) => return object_hash(m),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> ImportLine {
        serde_json::from_str(json).unwrap()
    }

    /// The line with its data and metadata in the binary form, as an import's spool gives it.
    fn stored(l: &ImportLine) -> ImportLine {
        let mut s = l.clone();
        let mut bytes = Vec::new();
        domain::data::put_value(&mut bytes, &l.data);
        s.data = EventData::from_encoded(&bytes).unwrap().0;
        assert!(s.data.undecoded().is_some());
        if let Some(m) = &l.metadata {
            let mut bytes = Vec::new();
            domain::data::put_object(&mut bytes, m);
            let stored = EventMetadata::from_encoded(&bytes).unwrap().0;
            assert!(stored.undecoded().is_some());
            s.metadata = Some(stored);
        }
        s
    }

    proptest::proptest! {
        /// Data walked in its binary form hashes as the decoded value does.
        #[test]
        fn stored_data_hashes_as_its_value(v in super::super::import_csv::any_json()) {
            let mut bytes = Vec::new();
            domain::data::put_value(&mut bytes, &v);
            let (data, _) = EventData::from_encoded(&bytes).unwrap();
            proptest::prop_assert_eq!(data_hash(&data), value_hash(&v));
            proptest::prop_assert!(data.undecoded().is_some(), "walked, not decoded");
        }
    }

    /// The digest says "same" exactly when `same_content` does, on the cases that matter:
    /// key order, number kinds, each field of the envelope.
    #[test]
    fn the_digest_follows_same_content() {
        let base = r#"{"id":"0192f4c2-6b1e-7c3a-9d2e-1f00c0ffee00","stream":"deal-D-1","type":"DealWon","occurred_at":"2026-06-03T09:30:00Z","actor":"wukong","data":{"amount":1,"reason":"x"},"metadata":{"a":1,"b":[1,"2"]}}"#;
        let a = line(base);
        assert_eq!(digest(&a), digest(&stored(&a)));
        let same = [
            base.replace(
                r#"{"amount":1,"reason":"x"}"#,
                r#"{"reason":"x","amount":1}"#,
            ),
            base.replace(r#"{"a":1,"b":[1,"2"]}"#, r#"{"b":[1,"2"],"a":1}"#),
        ];
        for s in same {
            let b = line(&s);
            assert!(a.same_content(&b), "{s}");
            assert_eq!(digest(&a), digest(&b), "{s}");
            assert_eq!(digest(&stored(&a)), digest(&stored(&b)), "{s}");
        }
        let other = [
            base.replace("deal-D-1", "deal-D-2"),
            base.replace("DealWon", "DealLost"),
            base.replace("09:30:00Z", "09:30:01Z"),
            base.replace("\"actor\":\"wukong\",", ""),
            base.replace("wukong", "bajie"),
            base.replace(r#""amount":1,"#, r#""amount":1.0,"#),
            base.replace(r#"[1,"2"]"#, r#"["1",2]"#),
            base.replace(r#","metadata":{"a":1,"b":[1,"2"]}"#, ""),
            base.replace(r#"{"a":1,"b":[1,"2"]}"#, "{}"),
        ];
        for s in other {
            let b = line(&s);
            assert!(!a.same_content(&b), "{s}");
            assert_ne!(digest(&a), digest(&b), "{s}");
            assert_ne!(digest(&stored(&a)), digest(&stored(&b)), "{s}");
        }
    }
}
