//! What every report's parameters share: the error type and period checks.
//!
//! Each report module has its own `…Params` struct: it derives `Deserialize` from a query
//! string with the SPEC's parameter names (all optional, defaults applied by `validate`),
//! and `validate()` either returns the checked form or a [`ParamError`] naming the parameter.
//! The HTTP API and the CLI both build these structs, so their output is identical.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A parameter was refused: which one, and why (the API maps this to a 400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("invalid parameter `{param}`: {message}")]
pub struct ParamError {
    pub param: &'static str,
    pub message: String,
}

impl ParamError {
    pub fn new(param: &'static str, message: impl Into<String>) -> ParamError {
        ParamError {
            param,
            message: message.into(),
        }
    }
}

/// A half-open period `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Period {
    /// Checks `from < to` when both are given.
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Period, ParamError> {
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(ParamError::new(
                    "from",
                    format!(
                        "`from` ({}) must be before `to` ({})",
                        domain::envelope::format_time(&f),
                        domain::envelope::format_time(&t)
                    ),
                ));
            }
        }
        Ok(Period { from, to })
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }
}

/// Parameters of the period reports (channels, win/loss, lead-to-cash, activity):
/// `from`, `to` (half-open, either may be omitted) and `as_of`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodParams {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub as_of: Option<DateTime<Utc>>,
}

/// Checked [`PeriodParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodQuery {
    pub period: Period,
    pub as_of: Option<DateTime<Utc>>,
}

impl PeriodParams {
    pub fn validate(&self) -> Result<PeriodQuery, ParamError> {
        Ok(PeriodQuery {
            period: Period::new(self.from, self.to)?,
            as_of: self.as_of,
        })
    }
}
