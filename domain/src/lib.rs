//! # domain — dealtrail's CRM vocabulary, its rules, and state folding
//!
//! Pure code: no I/O, no async, no clock. Time enters as a value.
//!
//! Layout:
//! - [`envelope`]: the canonical event envelope (SPEC §1.1), stream names, expected versions.
//! - [`money`]: exact amounts (integer cents).
//! - [`events`]: every event type of SPEC §1.2 as typed Rust.
//! - [`schema`]: schema versions and upcasting; [`schema::typed`] = upcast + parse.
//! - [`state`]: folding a stream into `DealState`/`CustomerState`/`LeadState`, and the org.
//! - [`rules`]: [`rules::check_batch`] — the rules of SPEC §1.3, catalogued in [`rules::RULES`].
//! - [`rejection`]: why an event was refused (rule, field, value).
//!
//! Place in the whole: `eventlog` stores envelopes and asks this crate whether a batch may be
//! appended; `projections` folds typed events into read models; `api` maps rejections to 4xx.

pub mod envelope;
pub mod events;
pub mod money;
pub mod rejection;
pub mod rules;
pub mod schema;
pub mod state;

pub use envelope::{Category, ExpectedVersion, ProposedEvent, RecordedEvent, StreamName};
pub use events::{Event, Month};
pub use money::Money;
pub use rejection::Rejection;
pub use rules::{check_batch, Context, Rule, RULES};
pub use schema::{typed, upcast};
pub use state::{fold_stream, DealState, OrgState, StreamState};
