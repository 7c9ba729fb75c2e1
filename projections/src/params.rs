//! What every report's parameters share: the error type and period checks.
//!
//! Each report module has its own `…Params` struct: it derives `Deserialize` from a query
//! string with the SPEC's parameter names (all optional, defaults applied by `validate`),
//! and `validate()` either returns the checked form or a [`ParamError`] naming the parameter.
//! The HTTP API and the CLI both build these structs, so their output is identical.

use std::collections::BTreeSet;

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

/// Whose work a report covers: the whole organisation, or the deals and activities of some
/// reps (a rep's own view, a manager's team). Not a query parameter: the API sets it from the
/// caller's token; the CLI reports on the whole organisation. Reports that honour it say how.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Organisation,
    Reps(BTreeSet<String>),
}

impl Scope {
    /// Whether `rep`'s deals and work are in the scope.
    pub fn covers(&self, rep: &str) -> bool {
        match self {
            Scope::Organisation => true,
            Scope::Reps(reps) => reps.contains(rep),
        }
    }

    pub fn is_organisation(&self) -> bool {
        matches!(self, Scope::Organisation)
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
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    #[serde(default, deserialize_with = "crate::params::query_time::deserialize")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::params::query_time::deserialize")]
    pub to: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

/// Checked [`PeriodParams`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeriodQuery {
    pub period: Period,
    pub as_of: Option<DateTime<Utc>>,
    /// Win/loss and activity honour it; channels and lead-to-cash are organisation-wide
    /// figures (leads and spend belong to nobody): they ignore it, and the API does not
    /// offer them to a caller with a narrower scope.
    pub scope: Scope,
}

impl PeriodParams {
    pub fn validate(&self) -> Result<PeriodQuery, ParamError> {
        Ok(PeriodQuery {
            period: Period::new(self.from, self.to)?,
            as_of: self.as_of,
            scope: Scope::Organisation,
        })
    }
}

/// `deserialize_with` for optional times in query strings: RFC 3339 (any offset, kept as
/// UTC), or a bare date `2026-06-01`; an empty value is absent. A bare date is a bound, so
/// what it means depends on the parameter: `from`/`to` (half-open periods) take its
/// midnight, the start of the day (`deserialize`); `as_of` ("as things stood on
/// 2026-06-30") takes the end of the day, its last nanosecond (`deserialize_as_of`).
pub mod query_time {
    use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
    use serde::{Deserialize, Deserializer};

    /// Which instant of a bare date's day a parameter means.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Day {
        Start,
        End,
    }

    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        parse_as(s, Day::Start)
    }

    pub fn parse_as(s: &str, day: Day) -> Result<DateTime<Utc>, String> {
        if let Ok(t) = domain::envelope::parse_time(s) {
            return Ok(t);
        }
        let start = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| {
                format!("invalid time {s:?}: expected RFC 3339 (2026-06-01T09:30:00Z) or a date (2026-06-01)")
            })?;
        Ok(match day {
            Day::Start => start,
            Day::End => start + TimeDelta::days(1) - TimeDelta::nanoseconds(1),
        })
    }

    fn optional<'de, D: Deserializer<'de>>(
        d: D,
        day: Day,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => parse_as(s.trim(), day)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    /// `from`, `to`: a bare date is its midnight.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        optional(d, Day::Start)
    }

    /// `as_of`: a bare date is the end of that day.
    pub fn deserialize_as_of<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        optional(d, Day::End)
    }
}
