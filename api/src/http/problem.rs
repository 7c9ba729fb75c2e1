//! Errors as `application/problem+json` (RFC 9457).
//!
//! Every handler returns [`ApiError`]; [`problem_for_bare_errors`] turns the few error
//! responses produced outside our handlers (405 from the router, 408 from the timeout,
//! 413 from a body limit) into the same format, so no client ever sees a bare error.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use eventlog::{ExpectedVersion, Rejection, StoreError};
use serde_json::{Map, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document: `type`, `title`, `status`, `detail` and extension members.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Short slug; the `type` member is `urn:dealtrail:problem:<slug>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Problem {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            format!("urn:dealtrail:problem:{}", self.kind).into(),
        );
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        for (k, v) in &self.extensions {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body().to_string()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client sent something malformed; `field` names the offending part when known.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No or an unknown bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// A token that is known but refused; `reason` (`revoked`, `expired`, `rep-left`) says
    /// why, `unknown` when it is not known at all (401).
    #[error("{detail}")]
    TokenRefused {
        reason: &'static str,
        detail: String,
    },
    /// Well-formed, but it cannot be done as asked; `field` names the part (422).
    #[error("{detail}")]
    Unprocessable { detail: String, field: String },
    /// The resource's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// Authenticated, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Not there, or not visible to the caller (the two are not told apart).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A report needs an exchange rate the log does not have (422).
    #[error("{0}")]
    MissingRate(Box<projections::currency::MissingRate>),
    /// A server-side failure: logged in full, answered with a generic body.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            detail: detail.into(),
            field: None,
        }
    }

    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    pub fn to_problem(&self) -> Problem {
        match self {
            ApiError::BadRequest { detail, field } => {
                let p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "Bad request",
                    detail,
                );
                match field {
                    Some(f) => p.with("field", f.as_str()),
                    None => p,
                }
            }
            ApiError::PayloadTooLarge(d) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                d,
            ),
            ApiError::UnsupportedMediaType(d) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                d,
            ),
            ApiError::Unauthorized(d) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", d)
            }
            ApiError::TokenRefused { reason, detail } => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
            )
            .with("reason", *reason),
            ApiError::Unprocessable { detail, field } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable request",
                detail,
            )
            .with("field", field.as_str()),
            ApiError::Conflict(d) => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", d),
            ApiError::Forbidden(d) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", d)
            }
            ApiError::NotFound(d) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", d)
            }
            ApiError::Store(e) => store_problem(e),
            ApiError::MissingRate(m) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-exchange-rate",
                "Missing exchange rate",
                m.to_string(),
            )
            .with("currency", m.currency.as_str())
            .with("month", m.month.to_string())
            .with("reporting_currency", m.reporting.as_str())
            .with(
                "missing",
                serde_json::to_value(&m.missing).unwrap_or(Value::Null),
            ),
            ApiError::Internal(_) => internal_problem(),
        }
    }
}

fn internal_problem() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal server error",
        "the server failed to handle the request; the details are in its log",
    )
}

fn expected_json(e: &ExpectedVersion) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

fn store_problem(e: &StoreError) -> Problem {
    match e {
        StoreError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => Problem::new(
            StatusCode::CONFLICT,
            "wrong-expected-version",
            "Wrong expected version",
            format!(
                "stream {stream} is at version {}, but the append expected {}",
                actual.map_or("none (no stream)".to_string(), |v| v.to_string()),
                expected_json(expected)
            ),
        )
        .with("stream", stream.as_str())
        .with("expected", expected_json(expected))
        .with("actual", actual.map_or(Value::Null, Value::from)),
        StoreError::IdConflict { id, position } => Problem::new(
            StatusCode::CONFLICT,
            "event-id-conflict",
            "Event id conflict",
            e.to_string(),
        )
        .with("id", id.to_string())
        .with("position", *position),
        StoreError::Rejected(r) => rejection_problem(r),
        StoreError::Invalid(d) => {
            Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", d)
        }
        StoreError::StorageFull(_) => storage_full_problem(),
        StoreError::Unavailable(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Service unavailable",
            "the event store's database cannot be reached: nothing was written; retry \
             (with the same event ids)",
        ),
        StoreError::Locked(_) | StoreError::Corrupt { .. } | StoreError::Backend(_) => {
            internal_problem()
        }
    }
}

/// 507: the disk holding the event store is full (the OS error and paths stay in the log).
pub fn storage_full_problem() -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "storage-full",
        "Insufficient storage",
        "the disk holding the event store is full: nothing was written; appends resume once \
         space is freed",
    )
}

fn rejection_problem(r: &Rejection) -> Problem {
    let mut p = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "rule-violated",
        "Rule violated",
        r.to_string(),
    )
    .with("rule", r.rule)
    .with("field", r.field.as_str())
    .with("value", r.value.as_str());
    if let Some(i) = r.index {
        p = p.with("index", i);
    }
    p
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(_)
        | ApiError::Store(
            StoreError::Backend(_)
            | StoreError::Corrupt { .. }
            | StoreError::Locked(_)
            | StoreError::StorageFull(_)
            | StoreError::Unavailable(_),
        ) = &self
        {
            tracing::error!(error = %self, "request failed");
        }
        let unavailable = matches!(self, ApiError::Store(StoreError::Unavailable(_)));
        let mut res = self.to_problem().into_response();
        if unavailable {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::Unauthorized(_) | ApiError::TokenRefused { .. } = self {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dealtrail\""),
            );
        }
        res
    }
}

/// An error status without a problem body (from the router, the timeout or a body limit)
/// gets one; everything else passes untouched (every response passes here, see
/// `finish_response` in the router).
pub fn problem_for_bare_errors(res: Response) -> Response {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let (kind, title, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "Not found", "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = res
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let detail = if allow.is_empty() {
                "this route does not accept this method".to_string()
            } else {
                format!("this route allows: {allow}")
            };
            ("method-not-allowed", "Method not allowed", detail)
        }
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "Request timeout",
            "the request took longer than the server allows".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the server accepts".to_string(),
        ),
        s if s.is_server_error() => return keep_headers(res, internal_problem()),
        s => (
            "error",
            "Error",
            format!("request failed with status {}", s.as_u16()),
        ),
    };
    keep_headers(res, Problem::new(status, kind, title, detail))
}

fn keep_headers(original: Response, problem: Problem) -> Response {
    let (parts, _) = original.into_parts();
    let mut res = problem.into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            res.headers_mut().insert(name, v.clone());
        }
    }
    if let Some(v) = parts.headers.get("x-request-id") {
        res.headers_mut().insert("x-request-id", v.clone());
    }
    res
}

/// The body of a 500 answered for a panic; the panic itself is logged.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = msg, "handler panicked");
    internal_problem().into_response()
}

/// The 404 for unknown routes.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conflict_names_expected_and_actual() {
        let p = ApiError::Store(StoreError::WrongExpectedVersion {
            stream: "deal-1".into(),
            expected: ExpectedVersion::Exact(2),
            actual: Some(4),
        })
        .to_problem();
        assert_eq!(p.status, StatusCode::CONFLICT);
        assert_eq!(p.body()["expected"], json!(2));
        assert_eq!(p.body()["actual"], json!(4));
    }

    #[test]
    fn a_full_disk_is_507_naming_the_cause_without_the_path() {
        let p = ApiError::Store(StoreError::StorageFull("/srv/data/db: os error 28".into()))
            .to_problem();
        assert_eq!(p.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(
            p.body()["type"],
            json!("urn:dealtrail:problem:storage-full")
        );
        assert!(p.detail.contains("disk"), "{}", p.detail);
        assert!(!p.body().to_string().contains("/srv"));
    }

    #[test]
    fn backend_errors_do_not_leak() {
        let p = ApiError::Store(StoreError::Backend("disk /secret full".into())).to_problem();
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!p.body().to_string().contains("secret"));
    }
}
