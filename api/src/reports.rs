//! One dispatcher for the reports of SPEC §2, shared by the HTTP API and `dealtrail report`,
//! so the JSON body and `--json` output are the same by construction: both hand the query
//! string (the CLI builds one from its flags) to [`run`].

use chrono::{DateTime, Utc};
use domain::RecordedEvent;
use eventlog::{EventStore, Filter, StoreError};
use projections::ReadModel;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;

/// The report names, as in `GET /v1/reports/{name}` and `dealtrail report NAME`.
pub const REPORTS: [&str; 8] = [
    "funnel", "reps", "pipeline", "channels", "win-loss", "l2c", "activity", "pool",
];

/// Why a report could not be computed: always the client's mistake.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    #[error("unknown report {0:?}: expected one of {list}", list = REPORTS.join(", "))]
    UnknownReport(String),
    #[error("parameter `{param}`: {message}")]
    BadParameter { param: String, message: String },
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

/// Computes report `name` with the parameters in `query`; `now` is the service's clock.
pub fn run(
    model: &ReadModel,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
) -> Result<Body, ReportError> {
    run_for(model, name, query, now, None)
}

/// [`run`], with the pipeline restricted to deals owned by `owners` (a rep's or a manager's
/// own view). Only the pipeline can be restricted; the caller decides who sees what.
pub fn run_for(
    model: &ReadModel,
    name: &str,
    query: &str,
    now: DateTime<Utc>,
    owners: Option<std::collections::BTreeSet<String>>,
) -> Result<Body, ReportError> {
    use projections::*;
    Ok(match name {
        "funnel" => {
            let q = parse_query::<funnel::FunnelParams>(query)?.validate()?;
            json(funnel::funnel(model, &q))
        }
        "reps" => {
            let q = parse_query::<reps::RepsParams>(query)?.validate()?;
            json(reps::reps(model, &q, now))
        }
        "pipeline" => {
            let mut q = parse_query::<pipeline::PipelineParams>(query)?.validate()?;
            q.owners = owners;
            json(pipeline::pipeline(model, &q, now))
        }
        "channels" => json(channels::channels(
            model,
            &parse_query::<params::PeriodParams>(query)?.validate()?,
        )),
        "win-loss" => json(winloss::win_loss(
            model,
            &parse_query::<params::PeriodParams>(query)?.validate()?,
        )),
        "l2c" => json(l2c::lead_to_cash(
            model,
            &parse_query::<params::PeriodParams>(query)?.validate()?,
        )),
        "activity" => json(activity::activity(
            model,
            &parse_query::<params::PeriodParams>(query)?.validate()?,
        )),
        "pool" => {
            let as_of = parse_query::<pool::PoolParams>(query)?.validate()?;
            json(pool::pool(model, as_of, now))
        }
        other => return Err(ReportError::UnknownReport(other.to_string())),
    })
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
            assert!(run(&m, name, "", now).is_ok(), "{name} on an empty model");
        }
    }
}
