//! Why an event was refused: the rule, the field and the value (SPEC §1.3).

use serde::Serialize;

/// A refused event. The API maps it to a 4xx problem+json body; the CLI prints it with the line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}rule {rule}: field `{field}` = {value}: {message}", index.map(|i| format!("event {i}: ")).unwrap_or_default())]
pub struct Rejection {
    /// Index of the offending event within its batch, when known.
    pub index: Option<usize>,
    /// Stable rule code, e.g. `deal.stage_exists` (see `Rule`).
    pub rule: &'static str,
    /// The offending field (`data.to`, `occurred_at`, `type`, ...).
    pub field: String,
    /// The offending value, rendered as JSON text.
    pub value: String,
    /// A sentence for a person.
    pub message: String,
}

impl Rejection {
    pub fn new(
        rule: &'static str,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Rejection {
        Rejection {
            index: None,
            rule,
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }

    pub fn at(mut self, index: usize) -> Rejection {
        self.index = Some(index);
        self
    }
}
