//! What every profile reads an export into — the org (pipeline, reps, customers) and each
//! deal's story (how it was opened, the stages it entered, its amounts, how it closed) — and
//! the one place that turns it into events.
//!
//! Event ids are UUIDv5 of a source key, in a namespace of dealtrail's own:
//! `<source>/<record>/<record id>/<role>`, e.g. `salesforce/deal/0061x00000AbCdE/opened`,
//! `…/history/2024-03-04T10:00:00Z/proposal_price_quote/1250000/stage`, `…/closed/1` (the
//! first close; `closed/2` after a reopening). A key names only facts that a later export of
//! the same source repeats unchanged (a history row's time and values, never a line number),
//! so importing an updated export yields the same ids for what was imported before and new
//! ids only for what is new. The key is kept in the event's metadata (`import_key`).
//!
//! The story of a deal is walked here, not in the profiles, so every profile's events follow
//! the rules: a stage change names the stage it leaves; nothing but a reopening follows a
//! close; a row that repeats the current stage adds nothing; times never run backwards
//! within a deal (a step dated before the previous one is placed at the previous one's time).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use domain::events::{
    CustomerRegistered, DealAmountChanged, DealLost, DealOpened, DealReopened, DealStageChanged,
    DealWon, Event, PipelineDefined, RepJoined, StageDef,
};
use domain::money::Money;
use domain::ProposedEvent;
use serde_json::{Map, Value};
use uuid::Uuid;

/// dealtrail's namespace for import ids (UUIDv5). Never change it: ids of events already
/// imported would no longer match.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_2f7e_9a4b_4c3d_8e5f_d0a1_b2c3_e4f5);

/// The org stream the imported org events go to.
pub const ORG_STREAM: &str = "org-main";

/// The customer a deal with no account goes to.
pub const UNKNOWN_CUSTOMER: &str = "unknown";

/// Where a fact came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u64,
}

/// A stage as an export names it, or one of the two outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Open(String),
    Won,
    Lost,
}

/// Something the export says happened to a deal at a time (a history row, a "date entered"
/// cell): it entered a stage, its amount was, or both.
#[derive(Debug, Clone)]
pub struct Step {
    /// The role part of the event id (`history/<time>/<stage>/<cents>`), unique in the deal.
    pub key: String,
    pub at: DateTime<Utc>,
    pub origin: Origin,
    pub stage: Option<Stage>,
    pub amount: Option<Money>,
    /// The reason recorded if this step closes the deal.
    pub reason: Option<String>,
}

/// The close an export's current row states (`IsClosed`), used when no step closed the deal.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub won: bool,
    pub at: DateTime<Utc>,
    pub amount: Money,
    pub reason: Option<String>,
    pub origin: Origin,
}

/// Takes the step that opens a deal out of its dated stages: the earliest one (by time, then
/// the order given), when it is an open stage. Returns it with its stage id.
pub fn take_opening(steps: &mut Vec<Step>) -> Option<(String, Step)> {
    steps.sort_by_key(|s| s.at);
    match steps.first().and_then(|s| s.stage.clone()) {
        Some(Stage::Open(stage)) => Some((stage, steps.remove(0))),
        _ => None,
    }
}

/// Dates the close that stands (the last one, when the deal is closed now) by the outcome's
/// date: the close date a CRM's own reports count a deal in, rather than when the row moving
/// it was written.
pub fn date_final_close(steps: &mut [Step], outcome: Option<&Outcome>) {
    let Some(o) = outcome else { return };
    let closing = |s: &Step| matches!(s.stage, Some(Stage::Won | Stage::Lost));
    if let Some(last) = steps.iter_mut().rev().find(|s| closing(s)) {
        last.at = o.at;
    }
}

/// One deal: how it was opened, then its steps.
#[derive(Debug, Clone)]
pub struct Deal {
    pub id: String,
    pub origin: Origin,
    pub opened_at: DateTime<Utc>,
    pub customer_id: String,
    pub owner: String,
    pub title: String,
    pub amount: Money,
    pub currency: Option<String>,
    /// The stage the deal was opened in.
    pub stage: String,
    pub expected_close: Option<NaiveDate>,
    pub products: Option<Vec<String>>,
    pub steps: Vec<Step>,
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone)]
pub struct RepInfo {
    pub name: String,
    pub team: String,
    pub manager: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerInfo {
    pub name: String,
    pub industry: Option<String>,
    pub region: Option<String>,
    pub source: Option<String>,
}

/// An export read by a profile.
#[derive(Debug, Default)]
pub struct Dataset {
    /// Names the source in every event id and in the actor (`import:<source>`).
    pub source: String,
    /// The pipeline to define, or `None` to keep the one in force.
    pub pipeline: Option<Vec<StageDef>>,
    pub reps: BTreeMap<String, RepInfo>,
    pub customers: BTreeMap<String, CustomerInfo>,
    pub deals: Vec<Deal>,
    /// Data rows read, over all files.
    pub rows: usize,
    /// Rows left out on purpose, by reason (e.g. Maven's prospects without a date).
    pub skipped: BTreeMap<String, usize>,
}

/// One event of an import, with its stream and the row it came from.
#[derive(Debug, Clone)]
pub struct MappedEvent {
    pub stream: String,
    pub event: ProposedEvent,
    pub origin: Origin,
}

impl Dataset {
    /// Registers a customer the first time it is seen.
    pub fn customer(&mut self, id: &str, info: impl FnOnce() -> CustomerInfo) {
        if !self.customers.contains_key(id) {
            self.customers.insert(id.to_string(), info());
        }
    }

    /// Registers a rep the first time it is seen.
    pub fn rep(&mut self, id: &str, info: impl FnOnce() -> RepInfo) {
        if !self.reps.contains_key(id) {
            self.reps.insert(id.to_string(), info());
        }
    }

    /// The events, in business-time order: the pipeline at the earliest time of the export,
    /// each rep and customer when their first deal opens (the earliest time when they have
    /// none), then every deal's story (see [`Dataset::story`]).
    pub fn events(self) -> Vec<MappedEvent> {
        self.story().collect()
    }

    /// [`Dataset::events`], made as they are taken: the org's events first (sorted by time),
    /// then each deal's story is walked when its opening is due and merged in by time, so a
    /// large export's events are never all in memory. At equal times, org events come first,
    /// then the deals in the dataset's order, each deal's events in its own order (a stable
    /// sort of all of them by time gives the same sequence).
    pub fn story(&self) -> Story<'_> {
        let origin = self.deals.first().map(|d| d.origin.clone());
        let origin = origin.unwrap_or(Origin {
            file: "".into(),
            line: 0,
        });
        let start = self
            .deals
            .iter()
            .map(|d| d.opened_at)
            .min()
            .unwrap_or(DateTime::UNIX_EPOCH);
        let mut first_deal: BTreeMap<&str, (DateTime<Utc>, &Origin)> = BTreeMap::new();
        for d in &self.deals {
            for who in [d.owner.as_str(), d.customer_id.as_str()] {
                let e = first_deal.entry(who).or_insert((d.opened_at, &d.origin));
                if d.opened_at < e.0 {
                    *e = (d.opened_at, &d.origin);
                }
            }
        }
        let actor = format!("import:{}", self.source);
        let mut out = Writer {
            source: &self.source,
            actor: &actor,
            events: Vec::new(),
        };
        if let Some(stages) = &self.pipeline {
            let key = serde_json::to_string(stages).unwrap_or_default();
            let event = Event::PipelineDefined(PipelineDefined {
                stages: stages.clone(),
            });
            out.push(
                ORG_STREAM,
                &format!("pipeline/{key}/defined"),
                start,
                &origin,
                event,
            );
        }
        let when = |id: &str| {
            first_deal
                .get(id)
                .map_or((start, &origin), |(t, o)| (*t, *o))
        };
        for (rep, info) in &self.reps {
            let (at, o) = when(rep);
            let event = Event::RepJoined(RepJoined {
                rep: rep.clone(),
                name: info.name.clone(),
                team: info.team.clone(),
                manager: info.manager.clone(),
            });
            out.push(
                ORG_STREAM,
                &format!("rep/{rep}/joined"),
                at,
                &o.clone(),
                event,
            );
        }
        for (id, info) in &self.customers {
            let (at, o) = when(id);
            let event = Event::CustomerRegistered(CustomerRegistered {
                name: info.name.clone(),
                industry: info.industry.clone(),
                size: None,
                region: info.region.clone(),
                source: info.source.clone(),
                tags: None,
                owner: None,
            });
            let stream = format!("customer-{id}");
            out.push(
                &stream,
                &format!("customer/{id}/registered"),
                at,
                &o.clone(),
                event,
            );
        }
        let mut org = out.events;
        // Stable: in the order pushed at equal times.
        org.sort_by_key(|(at, _)| *at);
        // Soonest last: taken from the end.
        let mut unopened: Vec<(DateTime<Utc>, usize)> = self
            .deals
            .iter()
            .enumerate()
            .map(|(i, d)| (d.opened_at, i))
            .collect();
        unopened.sort_unstable_by(|a, b| b.cmp(a));
        Story {
            dataset: self,
            actor,
            org: org.into_iter().peekable(),
            unopened,
            deals: BinaryHeap::new(),
            walked: HashMap::new(),
            ahead: None,
        }
    }
}

/// The events of a [`Dataset`], in order (see [`Dataset::story`]).
pub struct Story<'a> {
    dataset: &'a Dataset,
    /// `import:<source>`.
    actor: String,
    org: std::iter::Peekable<std::vec::IntoIter<(DateTime<Utc>, MappedEvent)>>,
    /// (opening time, index) of the deals not opened yet, the soonest last.
    unopened: Vec<(DateTime<Utc>, usize)>,
    /// (time of its next event, index) of every deal opened with events still to give: a
    /// heap of the deals under way only, not of every deal of the export.
    deals: BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
    /// The rest of the story of the deals opened so far.
    walked: HashMap<usize, VecDeque<(DateTime<Utc>, MappedEvent)>>,
    /// The deals' events walked ahead on another thread, if they are.
    ahead: Option<Receiver<Walked>>,
}

/// A deal's events walked ahead of the story (see [`Story::walked_ahead`]): its index in the
/// dataset's deals and its events with their times.
pub type Walked = (usize, Vec<(DateTime<Utc>, MappedEvent)>);

/// Deal `i`'s events, in order, each with its time.
fn walk(dataset: &Dataset, actor: &str, i: usize) -> Vec<(DateTime<Utc>, MappedEvent)> {
    let mut out = Writer {
        source: &dataset.source,
        actor,
        events: Vec::new(),
    };
    out.deal(&dataset.deals[i]);
    out.events
}

impl<'a> Story<'a> {
    /// The order in which the story opens the deals (indexes into the dataset's deals), and
    /// a function walking one deal as the story would: walking the deals in this order on
    /// another thread into [`Story::walked_ahead`] gives the same story, made on two cores.
    pub fn opening_order(&self) -> (Vec<usize>, impl Fn(usize) -> Walked + Send + use<'a>) {
        let order = self.unopened.iter().rev().map(|(_, i)| *i).collect();
        let (dataset, actor) = (self.dataset, self.actor.clone());
        (order, move |i| (i, walk(dataset, &actor, i)))
    }

    /// The story, taking each deal's events from `ahead` (walked in
    /// [`Story::opening_order`]) rather than walking them itself; should what arrives not be
    /// the deal due, it walks the rest itself.
    pub fn walked_ahead(mut self, ahead: Receiver<Walked>) -> Self {
        self.ahead = Some(ahead);
        self
    }
}

impl Iterator for Story<'_> {
    type Item = MappedEvent;

    fn next(&mut self) -> Option<MappedEvent> {
        let under_way = self.deals.peek().map(|Reverse(next)| *next);
        let opening = self.unopened.last().copied();
        // The same order as one heap of every deal: by time, then the deal's index.
        let (deal, opens) = match (under_way, opening) {
            (Some(u), Some(o)) if o < u => (Some(o), true),
            (Some(u), _) => (Some(u), false),
            (None, o) => (o, o.is_some()),
        };
        let org_first = match (self.org.peek(), deal) {
            (Some((org_at, _)), Some((deal_at, _))) => *org_at <= deal_at,
            (org, _) => org.is_some(),
        };
        if org_first {
            return self.org.next().map(|(_, e)| e);
        }
        let (_, i) = deal?;
        if opens {
            self.unopened.pop();
        } else {
            self.deals.pop();
        }
        let rest = match self.walked.entry(i) {
            Entry::Occupied(rest) => rest.into_mut(),
            Entry::Vacant(slot) => {
                let ahead = self.ahead.as_ref().and_then(|ahead| ahead.recv().ok());
                let events = match ahead {
                    Some((j, events)) if j == i => events,
                    // Out of step (or the thread is gone): walk every deal from here.
                    _ => {
                        self.ahead = None;
                        walk(self.dataset, &self.actor, i)
                    }
                };
                slot.insert(events.into())
            }
        };
        let (_, event) = rest.pop_front()?;
        match rest.front() {
            Some((at, _)) => self.deals.push(Reverse((*at, i))),
            None => {
                self.walked.remove(&i);
            }
        }
        Some(event)
    }
}

struct Writer<'a> {
    source: &'a str,
    /// `import:<source>`.
    actor: &'a str,
    events: Vec<(DateTime<Utc>, MappedEvent)>,
}

impl Writer<'_> {
    /// One event; `key` is its source key without the source (`deal/D1/opened`).
    fn push(&mut self, stream: &str, key: &str, at: DateTime<Utc>, origin: &Origin, event: Event) {
        let mut full = String::with_capacity(self.source.len() + 1 + key.len());
        full.push_str(self.source);
        full.push('/');
        full.push_str(key);
        let id = Uuid::new_v5(&NAMESPACE, full.as_bytes());
        let mut metadata = Map::new();
        metadata.insert("import_key".into(), Value::String(full));
        let proposed = ProposedEvent {
            id: Some(id),
            event_type: event.type_name().to_string(),
            occurred_at: Some(at),
            actor: Some(self.actor.to_string()),
            data: event.to_data().into(),
            metadata: Some(metadata.into()),
            recorded_at: None,
        };
        self.events.push((
            at,
            MappedEvent {
                stream: stream.to_string(),
                event: proposed,
                origin: origin.clone(),
            },
        ));
    }

    /// A deal's story, walked so that every event follows the deal rules.
    fn deal(&mut self, deal: &Deal) {
        let stream = format!("deal-{}", deal.id);
        let base = format!("deal/{}", deal.id);
        let opened = Event::DealOpened(DealOpened {
            customer_id: deal.customer_id.clone(),
            owner: deal.owner.clone(),
            title: deal.title.clone(),
            amount: deal.amount,
            currency: deal.currency.clone(),
            stage: deal.stage.clone(),
            expected_close: deal.expected_close,
            source_lead: None,
            products: deal.products.clone(),
        });
        self.push(
            &stream,
            &format!("{base}/opened"),
            deal.opened_at,
            &deal.origin,
            opened,
        );
        // By time, in the order given at equal times (a stable sort, as before).
        let mut steps: Vec<&Step> = deal.steps.iter().collect();
        steps.sort_by_key(|s| s.at);
        let mut now = deal.opened_at;
        let (mut stage, mut amount) = (deal.stage.clone(), deal.amount);
        let mut closed = false;
        let mut closes = 0;
        for step in steps {
            now = now.max(step.at);
            let key = |role: &str| format!("{base}/{}/{role}", step.key);
            match &step.stage {
                Some(Stage::Open(to)) if closed => {
                    let event = Event::DealReopened(DealReopened { stage: to.clone() });
                    self.push(&stream, &key("reopened"), now, &step.origin, event);
                    (closed, stage) = (false, to.clone());
                }
                Some(Stage::Open(to)) if *to != stage => {
                    let event = Event::DealStageChanged(DealStageChanged {
                        from: std::mem::replace(&mut stage, to.clone()),
                        to: to.clone(),
                    });
                    self.push(&stream, &key("stage"), now, &step.origin, event);
                }
                Some(outcome @ (Stage::Won | Stage::Lost)) if !closed => {
                    closes += 1;
                    let won = *outcome == Stage::Won;
                    let event = close(won, step.amount.unwrap_or(amount), step.reason.clone());
                    self.push(
                        &stream,
                        &format!("{base}/closed/{closes}"),
                        now,
                        &step.origin,
                        event,
                    );
                    closed = true;
                }
                _ => {}
            }
            if let Some(m) = step.amount.filter(|m| !closed && *m != amount) {
                let event = Event::DealAmountChanged(DealAmountChanged { amount: m });
                self.push(&stream, &key("amount"), now, &step.origin, event);
                amount = m;
            }
        }
        if let Some(o) = deal.outcome.as_ref().filter(|_| !closed) {
            let event = close(o.won, o.amount, o.reason.clone());
            let key = format!("{base}/closed/{}", closes + 1);
            self.push(&stream, &key, now.max(o.at), &o.origin, event);
        }
    }
}

fn close(won: bool, amount: Money, reason: Option<String>) -> Event {
    if won {
        Event::DealWon(DealWon { amount, reason })
    } else {
        Event::DealLost(DealLost {
            reason: reason.unwrap_or_else(|| "unknown".into()),
            competitor: None,
            note: None,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2024, 3, day)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    }

    fn origin() -> Origin {
        Origin {
            file: "t.csv".into(),
            line: 2,
        }
    }

    fn step(key: &str, day: u32, stage: Stage, amount: Option<i64>) -> Step {
        Step {
            key: key.into(),
            at: at(day),
            origin: origin(),
            stage: Some(stage),
            amount: amount.map(Money::from_cents),
            reason: None,
        }
    }

    /// A dataset of one deal `D1` (file `t.csv`, line 2) with these steps and outcome.
    pub(in crate::cli::import_csv) fn deal(steps: Vec<Step>, outcome: Option<Outcome>) -> Dataset {
        Dataset {
            source: "t".into(),
            deals: vec![Deal {
                id: "D1".into(),
                origin: origin(),
                opened_at: at(2),
                customer_id: "c".into(),
                owner: "r".into(),
                title: "T".into(),
                amount: Money::from_cents(100),
                currency: None,
                stage: "a".into(),
                expected_close: None,
                products: None,
                steps,
                outcome,
            }],
            ..Dataset::default()
        }
    }

    fn story(d: Dataset) -> Vec<String> {
        d.events()
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e.event.event_type,
                    *e.event.data,
                    e.event.occurred_at.unwrap().format("%d")
                )
            })
            .collect()
    }

    #[test]
    fn a_story_follows_the_deal_rules_whatever_the_rows_say() {
        let steps = vec![
            // Given out of order; the repeated stage adds nothing but its new amount.
            step("s3", 5, Stage::Won, Some(300)),
            step("s2", 4, Stage::Open("b".into()), Some(200)),
            // Dated before the opening: placed at the opening's time.
            step("s1", 1, Stage::Open("b".into()), None),
            step("s4", 6, Stage::Open("a".into()), None),
        ];
        let lost = Outcome {
            won: false,
            at: at(9),
            amount: Money::ZERO,
            reason: None,
            origin: origin(),
        };
        assert_eq!(
            story(deal(steps, Some(lost))),
            [
                r#"DealOpened {"customer_id":"c","owner":"r","title":"T","amount":1.0,"stage":"a"} 02"#,
                r#"DealStageChanged {"from":"a","to":"b"} 02"#,
                r#"DealAmountChanged {"amount":2.0} 04"#,
                r#"DealWon {"amount":3.0} 05"#,
                r#"DealReopened {"stage":"a"} 06"#,
                r#"DealLost {"reason":"unknown"} 09"#,
            ]
        );
    }

    #[test]
    fn ids_depend_on_the_source_key_only() {
        let a = deal(vec![step("s1", 3, Stage::Open("b".into()), None)], None).events();
        let mut later = deal(vec![step("s1", 3, Stage::Open("b".into()), None)], None);
        later.deals[0].steps.push(step("s2", 4, Stage::Won, None));
        later.deals[0].origin.line = 40;
        let b = later.events();
        assert_eq!(a[0].event.id, b[0].event.id);
        assert_eq!(a[1].event.id, b[1].event.id);
        assert_eq!(b.len(), 3);
        assert_eq!(
            a[0].event.id,
            Some(Uuid::new_v5(&NAMESPACE, b"t/deal/D1/opened"))
        );
    }

    /// The story's order is that of a stable sort by time of the org's events followed by
    /// every deal's events, deal after deal in the dataset's order (what `Dataset::story`
    /// promises), whatever the deals' opening times and steps.
    mod order {
        use super::*;
        use proptest::prelude::*;

        fn dataset(deals: &[(u32, Vec<(u32, u8)>)]) -> Dataset {
            let mut d = deal(Vec::new(), None);
            let template = d.deals.pop().unwrap();
            d.reps.insert(
                "r".into(),
                RepInfo {
                    name: "R".into(),
                    team: "t".into(),
                    manager: None,
                },
            );
            d.customers.insert("c".into(), CustomerInfo::default());
            for (n, (opened, steps)) in deals.iter().enumerate() {
                let mut deal = template.clone();
                deal.id = format!("D{n}");
                deal.opened_at = at(*opened);
                deal.steps = steps
                    .iter()
                    .enumerate()
                    .map(|(k, (day, stage))| {
                        let stage = match stage % 4 {
                            0 => Stage::Won,
                            1 => Stage::Lost,
                            s => Stage::Open(format!("s{s}")),
                        };
                        let mut s = step(&format!("k{k}"), *day, stage, Some(i64::from(*day)));
                        s.origin.line = k as u64;
                        s
                    })
                    .collect();
                d.deals.push(deal);
            }
            d
        }

        /// A deal's own events, walked alone.
        fn walked(d: &Dataset, i: usize) -> Vec<(DateTime<Utc>, MappedEvent)> {
            let mut out = Writer {
                source: &d.source,
                actor: "import:t",
                events: Vec::new(),
            };
            out.deal(&d.deals[i]);
            out.events
        }

        proptest! {
            #[test]
            fn the_story_is_a_stable_sort_by_time(
                deals in prop::collection::vec(
                    (1u32..20, prop::collection::vec((1u32..28, any::<u8>()), 0..5)),
                    0..12,
                )
            ) {
                let d = dataset(&deals);
                let story: Vec<MappedEvent> = d.story().collect();
                let org = story.iter().take_while(|e| e.stream == ORG_STREAM
                    || e.stream.starts_with("customer-")).count();
                // Two org events (the rep, the customer), when there is a deal at all.
                prop_assert_eq!(org, 2);
                let mut all: Vec<(DateTime<Utc>, String)> = story[..org]
                    .iter()
                    .map(|e| (e.event.occurred_at.unwrap(), e.event.metadata.as_ref().unwrap()["import_key"].to_string()))
                    .collect();
                for i in 0..d.deals.len() {
                    all.extend(walked(&d, i).into_iter().map(|(at, e)| {
                        (at, e.event.metadata.unwrap()["import_key"].to_string())
                    }));
                }
                all.sort_by_key(|(at, _)| *at);
                let keys: Vec<String> = story
                    .iter()
                    .map(|e| e.event.metadata.as_ref().unwrap()["import_key"].to_string())
                    .collect();
                let expected: Vec<String> = all.into_iter().map(|(_, k)| k).collect();
                prop_assert_eq!(&keys, &expected);
                // The deals walked ahead give the same story; so do deals walked out of step
                // (in reverse), which the story walks again itself.
                for reverse in [false, true] {
                    let story = d.story();
                    let (mut order, walk) = story.opening_order();
                    if reverse {
                        order.reverse();
                    }
                    let (ahead, walked) = std::sync::mpsc::sync_channel(order.len());
                    for i in order {
                        ahead.send(walk(i)).unwrap();
                    }
                    drop(ahead);
                    let keys: Vec<String> = story
                        .walked_ahead(walked)
                        .map(|e| e.event.metadata.unwrap()["import_key"].to_string())
                        .collect();
                    prop_assert_eq!(&keys, &expected);
                }
            }
        }
    }
}
