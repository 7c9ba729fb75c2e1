//! One dispatcher for the reports of SPEC §2, shared by the HTTP API and `dealtrail report`,
//! so the JSON body and `--json` output are the same by construction: both hand the query
//! string (the CLI builds one from its flags) to [`run`].

use chrono::{DateTime, Utc};
use domain::RecordedEvent;
use eventlog::{EventStore, Filter, StoreError};
use projections::params::Scope;
use projections::ReadModel;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;

/// The report names, as in `GET /v1/reports/{name}` and `dealtrail report NAME`.
pub const REPORTS: [&str; 10] = [
    "funnel",
    "reps",
    "pipeline",
    "channels",
    "win-loss",
    "l2c",
    "activity",
    "pool",
    "service",
    "follow-up",
];

/// Why a report could not be computed: always the client's mistake.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    #[error("unknown report {0:?}: expected one of {list}", list = REPORTS.join(", "))]
    UnknownReport(String),
    #[error("parameter `{param}`: {message}")]
    BadParameter { param: String, message: String },
    /// Channels and lead-to-cash are about leads and spend, which belong to nobody: they
    /// exist only for the whole organisation.
    #[error(
        "report {0:?} covers the whole organisation only: it is not computed for a narrower scope"
    )]
    OrganisationOnly(String),
    /// An amount the report shows is in a currency with no exchange rate for the month it
    /// needs (SPEC §2): the report is refused rather than added unconverted.
    #[error(transparent)]
    MissingRate(#[from] projections::currency::MissingRate),
    /// The follow-up list of a rep outside the caller's scope (a rep names only themself, a
    /// manager a rep of the team): refused whether or not the rep exists.
    #[error("the follow-up list of rep {0:?} is not yours to read: a rep reads their own, a manager a rep of the team")]
    RepOutOfScope(String),
    /// The follow-up list of a rep the log does not know.
    #[error("rep {0:?} not found")]
    UnknownRep(String),
}

/// What a report may need besides its parameters: the service's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportOptions {
    /// The pool policy's `release_after_days` (`serve --pool-release-after-days`), if on.
    pub pool_release_after_days: Option<u32>,
}

impl From<projections::ParamError> for ReportError {
    fn from(e: projections::ParamError) -> ReportError {
        ReportError::BadParameter {
            param: e.param.to_string(),
            message: e.message,
        }
    }
}

/// Parses a query string into a report's parameter struct, naming the offending parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ReportError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names an unknown parameter in the message itself.
        let param = if path == "." || path == "?" {
            "query".to_string()
        } else {
            path
        };
        ReportError::BadParameter {
            param,
            message: inner,
        }
    })
}

/// A report body, serialised once: straight to JSON text, with no `Value` tree in between
/// (a pipeline with tens of thousands of stale deals spent two thirds of its time there).
pub type Body = Box<RawValue>;

fn json<T: serde::Serialize>(v: T) -> Body {
    serde_json::value::to_raw_value(&v)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap_or_default())
}

/// Computes report `name` with the parameters in `query` for the whole organisation; `now`
/// is the service's clock.
pub fn run(
    model: &ReadModel,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
) -> Result<Body, ReportError> {
    run_for(model, name, query, now, Scope::Organisation)
}

/// [`run`], over the deals and work of `scope` (a rep's own view, a manager's team; the
/// caller decides whose). Each report module says what its scope covers; channels and
/// lead-to-cash exist for the whole organisation only ([`ReportError::OrganisationOnly`]).
pub fn run_for(
    model: &ReadModel,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
    scope: Scope,
) -> Result<Body, ReportError> {
    run_with(model, name, query, now, scope, &ReportOptions::default())
}

/// [`run_for`], with the service's configuration.
pub fn run_with(
    model: &ReadModel,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
    scope: Scope,
    options: &ReportOptions,
) -> Result<Body, ReportError> {
    use projections::*;
    let period = |scope: Scope| -> Result<params::PeriodQuery, ReportError> {
        let mut q = parse_query::<params::PeriodParams>(query)?.validate()?;
        q.scope = scope;
        Ok(q)
    };
    let organisation_only = |scope: &Scope| {
        if scope.is_organisation() {
            Ok(())
        } else {
            Err(ReportError::OrganisationOnly(name.to_string()))
        }
    };
    Ok(match name {
        "funnel" => {
            let mut q = parse_query::<funnel::FunnelParams>(query)?.validate()?;
            q.scope = scope;
            json(funnel::funnel(model, &q))
        }
        "reps" => {
            let mut q = parse_query::<reps::RepsParams>(query)?.validate()?;
            q.scope = scope;
            json(reps::reps(model, &q, now)?)
        }
        "pipeline" => {
            let mut q = parse_query::<pipeline::PipelineParams>(query)?.validate()?;
            q.scope = scope;
            json(pipeline::pipeline(model, &q, now)?)
        }
        "channels" => {
            organisation_only(&scope)?;
            json(channels::channels(model, &period(scope)?)?)
        }
        "win-loss" => json(winloss::win_loss(model, &period(scope)?)?),
        "l2c" => {
            organisation_only(&scope)?;
            json(l2c::lead_to_cash(model, &period(scope)?)?)
        }
        "activity" => json(activity::activity(model, &period(scope)?)),
        "pool" => {
            let as_of = parse_query::<pool::PoolParams>(query)?.validate()?;
            json(pool::pool_in(model, as_of, now, &scope))
        }
        "service" => {
            let mut q = parse_query::<service::ServiceParams>(query)?.validate()?;
            q.scope = scope;
            json(service::service(model, &q, now))
        }
        "follow-up" => {
            let mut q = parse_query::<follow_up::FollowUpParams>(query)?.validate()?;
            q.rep = Some(follow_up_rep(model, q.rep.take(), &scope)?);
            q.release_after_days = options.pool_release_after_days;
            json(follow_up::follow_up(model, &q, now))
        }
        other => return Err(ReportError::UnknownReport(other.to_string())),
    })
}

/// Whose follow-up list: the rep named, if the scope covers them; without a name, the
/// scope's only rep (a rep's own list). An organisation-wide caller names a known rep.
fn follow_up_rep(
    model: &ReadModel,
    named: Option<String>,
    scope: &Scope,
) -> Result<String, ReportError> {
    let required = || ReportError::BadParameter {
        param: "rep".into(),
        message: "required: name the rep whose follow-up list to show".into(),
    };
    match (named, scope) {
        (Some(rep), _) if !scope.covers(&rep) => Err(ReportError::RepOutOfScope(rep)),
        (Some(rep), Scope::Reps(_)) => Ok(rep),
        (Some(rep), Scope::Organisation) => {
            let known =
                model.reps(None).contains_key(&rep) || model.rep_months.reps().any(|r| r == rep);
            if known {
                Ok(rep)
            } else {
                Err(ReportError::UnknownRep(rep))
            }
        }
        (None, Scope::Reps(reps)) if reps.len() == 1 => {
            reps.iter().next().cloned().ok_or_else(required)
        }
        (None, _) => Err(required()),
    }
}

/// `GET /v1/deals?…` (SPEC §5.1): a page of the deal list over the deals of `scope`, from
/// the read model's index (no scan of the log).
pub fn deal_list(model: &ReadModel, query: &str, scope: Scope) -> Result<Body, ReportError> {
    let mut q = parse_query::<projections::deal_list::DealListParams>(query)?.validate()?;
    q.scope = scope;
    Ok(json(projections::deal_list::list(model, &q)))
}

/// `GET /v1/deals/{id}?as_of=`: the deal's state, `Ok(None)` for an unknown deal.
pub fn deal_state(
    model: &ReadModel,
    deal_id: &str,
    query: &str,
) -> Result<Option<Value>, ReportError> {
    let as_of = parse_query::<projections::replay::DealStateParams>(query)?.validate()?;
    Ok(projections::replay::deal_state(model, deal_id, as_of)
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null)))
}

/// `GET /v1/deals/{id}/replay`: `None` for an unknown deal. `events` are the deal stream's
/// events as read from the log (the read model keeps only their positions).
pub fn replay(
    model: &ReadModel,
    deal_id: &str,
    events: &[RecordedEvent],
    now: DateTime<Utc>,
) -> Option<projections::replay::Replay> {
    projections::replay::replay(model, deal_id, events, now)
}

/// The deal stream's events, for [`replay`].
pub async fn deal_events(
    store: &dyn EventStore,
    deal_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    store
        .read_stream(&format!("deal-{deal_id}"), 0, usize::MAX)
        .await
}

/// The events at `positions` (a timeline page), read from the log one by one.
pub async fn events_at(
    store: &dyn EventStore,
    positions: &[u64],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let all = Filter::default();
    let mut out = Vec::with_capacity(positions.len());
    for &p in positions {
        out.extend(
            store
                .read_all(p, 1, &all)
                .await?
                .into_iter()
                .filter(|e| e.position == p),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_named() {
        let m = ReadModel::new();
        let now = Utc::now();
        match run(&m, "pipeline", "stale_days=soon", now) {
            Err(ReportError::BadParameter { param, .. }) => assert_eq!(param, "stale_days"),
            other => panic!("{other:?}"),
        }
        match run(&m, "funnel", "colour=red", now) {
            Err(ReportError::BadParameter { message, .. }) => {
                assert!(message.contains("colour"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            run(&m, "nope", "", now).err(),
            Some(ReportError::UnknownReport("nope".into()))
        );
        for name in REPORTS {
            let r = run(&m, name, "", now);
            if name == "follow-up" {
                // The whole organisation has no list of its own: a rep must be named.
                assert!(
                    matches!(&r, Err(ReportError::BadParameter { param, .. }) if param == "rep"),
                    "{r:?}"
                );
            } else {
                assert!(r.is_ok(), "{name} on an empty model");
            }
        }
    }
}
