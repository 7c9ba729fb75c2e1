//! OpenAPI schemas of the canonical event forms, composed from the types' own derived
//! schemas: the envelope ([`RecordedEvent`], [`ProposedEvent`]) and [`Event`], a `oneOf`
//! that ties each `type` to the shape of its `data`. Pure: schemas are values.

use utoipa::openapi::schema::{AllOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::envelope::{ProposedEvent, RecordedEvent};
use crate::events::Event;

type Schemas = Vec<(String, RefOr<Schema>)>;

fn envelope_and_event<T: ToSchema>(description: &str) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(Ref::from_schema_name(T::name()))
        .item(Ref::from_schema_name(Event::name()))
        .description(Some(description))
        .into()
}

fn push<T: ToSchema>(out: &mut Schemas) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// An event in the canonical JSON form (SPEC §1.1), as every read returns it.
pub struct CanonicalEvent;

impl PartialSchema for CanonicalEvent {
    fn schema() -> RefOr<Schema> {
        envelope_and_event::<RecordedEvent>(
            "An event in the canonical JSON form (SPEC §1.1): the envelope, and `data` as its `type` says",
        )
    }
}

impl ToSchema for CanonicalEvent {
    fn schemas(out: &mut Schemas) {
        push::<RecordedEvent>(out);
        push::<Event>(out);
    }
}

/// An event to append: the server assigns the rest. Unknown fields are refused.
pub struct ProposedCanonicalEvent;

impl PartialSchema for ProposedCanonicalEvent {
    fn schema() -> RefOr<Schema> {
        envelope_and_event::<ProposedEvent>(
            "An event to append: `type` and its `data`; the server assigns the rest",
        )
    }
}

impl ToSchema for ProposedCanonicalEvent {
    fn schemas(out: &mut Schemas) {
        push::<ProposedEvent>(out);
        push::<Event>(out);
    }
}
