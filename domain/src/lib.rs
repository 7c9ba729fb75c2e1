//! # domain — dealtrail's CRM vocabulary, its rules, and state folding
//!
//! Pure code: no I/O, no async, no clock. Time enters as a value.
//!
//! Layout:
//! - [`envelope`]: the canonical event envelope (SPEC §1.1), stream names, expected versions.
//! - [`data`]: an event's `data` ([`data::EventData`]: decoded from the log only when looked at)
//!   and the binary form the log stores JSON values in.
//! - [`money`]: exact amounts (integer cents).
//! - [`openapi`]: the OpenAPI schemas of the canonical event forms (`data` keyed by `type`).
//! - [`events`]: every event type of SPEC §1.2 as typed Rust, declared once (`event_types!`:
//!   the enum, the name list with categories and stored indexes, personal fields, parsing).
//! - [`schema`]: schema versions and upcasting; [`schema::typed`] = upcast + parse.
//! - [`state`]: folding a stream into `DealState`/`CustomerState`/`LeadState`, and the org
//!   (`OrgState`: pipeline in force, reps, targets, reporting currency). `apply` is total.
//!   The one ordering rule: a stream's state is its events folded in business order,
//!   (`occurred_at`, `position`) ([`state::fold_stream`] sorts); see [`state`].
//! - [`rules`]: [`rules::check_batch`] — the rules of SPEC §1.3 and a few more, catalogued
//!   in [`rules::RULES`]; one file per area (`catalog`, `envelope`, `values`, `deal`,
//!   `customer`, `lead`, `org`).
//! - [`rejection`]: why an event was refused (rule, field, value, index in the batch).
//!
//! Place in the whole: `eventlog` stores envelopes and asks this crate whether a batch may be
//! appended; `projections` folds typed events into read models; `api` maps rejections to 4xx.
//!
//! ## Checking an append
//! `check_batch(&Context { org, now, customers }, &state_before, stream, &batch)` checks each
//! event against the state left by the previous ones and returns the stream's state after the
//! batch, or the first rejection (with `index`); the caller then writes nothing. The caller
//! keeps the `OrgState` (fold the org stream with `OrgState::apply`) and each stream's
//! `StreamState` (from `check_batch`, or `fold_stream`); `customers` gives the customers'
//! states the same way (`rules::customer_named` says which one a batch needs). Not checked
//! here: ids, versions, positions and expected versions (the store assigns and checks them),
//! and references to other streams' existence beyond a deal's customer (`source_lead`, a
//! lead's `customer_id`/`deal_id` are only checked to be valid ids).
//!
//! ## Rules (codes are stable; `RULES` has a one-line description of each)
//! From SPEC §1.3 / the brief:
//! `stream.name`, `event.type_known`, `event.type_category`, `event.data` (field path and
//! value in the rejection), `stream.opening_first`, `stream.opening_once`,
//! `deal.stage_exists`, `deal.stage_from`, `deal.closed`, `deal.reopen_only_closed`,
//! `deal.payment_only_won`, `customer.claim_from_pool`, `customer.release_owned`,
//! `value.amount_non_negative`, `value.in_range`, `pipeline.non_empty`,
//! `pipeline.unique_ids`, `time.before_opening`, `time.occurred_after_recorded`,
//! `time.recorded_in_future`, `event.metadata_size`, `event.actor`.
//!
//! Added because a careful user expects them:
//! - `stream.match`: an event naming another stream is not slipped into this one.
//! - `value.non_empty`: names, ids, reasons, reps and titles are not blank.
//! - `value.entity_id`: `customer_id`, `deal_id`, `source_lead` could name a stream.
//! - `value.currency`: three upper-case letters (a deal's currency, the reporting currency,
//!   an exchange rate's currency).
//! - `value.rate_positive`: an exchange rate is a finite number > 0.
//! - `rate.not_reporting_currency`: no exchange rate for the reporting currency in force
//!   (its rate is 1; [`state::OrgState::reporting_currency`], "CNY" until a
//!   `ReportingCurrencySet`).
//! - `pipeline.reserved_ids`: `won`/`lost` are outcomes, not stages.
//! - `rep.leave_active`: `RepLeft` only for a rep who is active.
//! - `rep.active`: **every rep an event names has joined (`RepJoined`) and not left**:
//!   `DealOpened.owner`, `DealReassigned.to`, `CustomerRegistered.owner`,
//!   `CustomerClaimed.rep`, `CustomerAssigned.rep`, `LeadQualified.rep`,
//!   `ActivityLogged.rep`, `TargetSet.rep`. A typo'd or unknown rep no longer creates a
//!   phantom owner in the reports; a rep who rejoins is active again. Not checked:
//!   `DealReassigned.from` (it must be the current owner, `deal.reassign_from`, and taking a
//!   deal away from a rep who left is what reassignment is for) and `CustomerAssigned.by`
//!   (who made the assignment, a manager or admin who need not be a rep, like `actor`).
//!   Like every rule it applies to appends: a log recorded before the rule still reads and
//!   folds as it is.
//! - `target.scope`: a target is for a rep, a team or the org, not a rep and a team.
//! - `deal.customer_owner`: **a deal is opened only on a registered customer that is the deal
//!   owner's or in the public pool.** Opening one on another rep's customer put it in that
//!   rep's timeline and worked their customer behind their back; a manager who wants it
//!   assigns the customer first (`CustomerAssigned`). The pool stays open: nobody owns a pool
//!   customer, and imported histories (the Maven data set: accounts without an owner, each
//!   worked by several agents) are made of such deals; who may *see* such a deal is the
//!   API's scope (only its owner's). The customer's state is the one before the append; a
//!   later reassignment of the deal or the customer is allowed. Like every rule it applies
//!   to appends: the recorded logs and the demo already keep it.
//! - `deal.stage_unchanged`: a stage change goes somewhere.
//! - `deal.reassign_from`: `DealReassigned.from` is the current owner, `.to` someone else.
//! - `payment.installment_unique`, `payment.installment_known`: installment ids are unique
//!   per deal and a payment names a scheduled one (or none).
//! - `payment.within_won`: payments never exceed the won amount, and a reopened deal with
//!   payments is not won again for less than was paid.
//! - `customer.update_owner`: **`CustomerUpdated` may not carry `owner`.** Ownership has its
//!   own events (`CustomerClaimed` from the pool, `CustomerAssigned` by a manager,
//!   `CustomerReleased` back to the pool) so that pool reports and "who owned it when" stay
//!   exact; the rejection points there. The fold ignores `owner` in `CustomerUpdated`.
//! - `customer.update_empty`: an update changes something.
//! - `customer.complaint_unique`, `customer.complaint_open`: complaint ids are not reused
//!   while open; only an open complaint is resolved.
//! - `lead.converted_final`: nothing follows `LeadConverted` (but `PersonalDataErased`).
//! - `person.erased_once`: `PersonalDataErased` at most once per customer or lead.
//! - `person.erased_no_personal_data`: after it, no event of the person's stream carries
//!   personal data ([`events::personal_fields`]). The event store in front of the log
//!   (`eventlog::personal`) also applies it to the person's deals, and lets
//!   `PersonalDataErased` in only with the destruction of the person's key.
//! - `lead.convert_disqualified`: a disqualified lead is qualified again before conversion
//!   (re-qualifying a disqualified lead is allowed).
//!
//! Allowed on purpose: moving a deal back a stage or skipping stages; late entries
//! (`occurred_at` in the past, down to the stream's opening); `ActivityLogged` and payments
//! after a close; reopening a deal any number of times; `CustomerAssigned` of an owned
//! customer (a manager's reassignment); claiming a churned customer from the pool.
//!
//! ## Evolving the schema without rewriting the log
//! The log is never rewritten. Each event type has a schema version
//! ([`schema::current_schema_version`], 1 for all today); an event is stored with the
//! version it was written under, and [`schema::upcast`] brings old `data` to the current
//! shape on every read (`typed`, the fold and the rules all go through it). Exports are
//! always current.
//! - **Add a field**: make it optional (`Option<T>` with `#[serde(default)]`) and no
//!   version bump is needed: old events simply lack it. If it must be required, bump the
//!   type's version in `schema::CURRENT.versions` and register an `UpcastStep` from the old
//!   version that inserts the default value.
//! - **Rename a field**: rename it in the payload struct, bump the version, and register a
//!   step `{ event_type, from_version: old, upcast }` whose function moves the value from
//!   the old key to the new one. Steps chain: v1→v2→v3.
//! - **Retire an event type**: stop producing it (remove it from the HTTP docs and the
//!   rules' accepted types for new appends) and register a step for its last version that
//!   rewrites it into a current type (a step may change `event_type`); the old events then
//!   read as their replacement. If no replacement fits, keep the variant readable and mark
//!   it retired instead.
//! - Record a new `replay-tests/logs/vN-….ndjson` whenever a version changes; old ones stay
//!   and must keep passing `domain/tests/recorded_log.rs`-style tests.
//!
//! The schema tests (`schema.rs`) show a rename, a field addition and a type retirement on
//! a hypothetical history, and check that the chain runs.

pub mod data;
pub mod envelope;
pub mod events;
pub mod money;
pub mod openapi;
pub mod rejection;
pub mod rules;
pub mod schema;
pub mod state;

pub use data::{EventData, EventMetadata};
pub use envelope::{Category, ExpectedVersion, ProposedEvent, RecordedEvent, StreamName};
pub use events::{Event, Month};
pub use money::Money;
pub use rejection::Rejection;
pub use rules::{check_batch, Context, Rule, RULES};
pub use schema::{typed, upcast};
pub use state::{fold_stream, DealState, OrgState, StreamState};
