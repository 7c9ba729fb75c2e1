//! Query-parameter helpers shared by the read endpoints.

use domain::StreamName;
use eventlog::Filter;

use super::problem::ApiError;
use super::state::ApiConfig;

/// The page size to use: `limit` if in `1..=max_page_size`, the default if absent.
pub fn page_limit(config: &ApiConfig, limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(config.default_page_size.min(config.max_page_size)),
        Some(0) => Err(ApiError::bad_field("limit", "limit must be at least 1")),
        Some(n) if n > config.max_page_size => Err(ApiError::bad_field(
            "limit",
            format!(
                "limit {n} exceeds the maximum page size {}",
                config.max_page_size
            ),
        )),
        Some(n) => Ok(n),
    }
}

/// `types` (comma-separated, blanks ignored) and `stream_prefix` as a store filter.
pub fn filter(types: Option<&str>, stream_prefix: Option<String>) -> Filter {
    Filter {
        types: types
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        stream_prefix: stream_prefix.filter(|p| !p.is_empty()),
    }
}

/// A stream name from the path; 400 naming the problem otherwise.
pub fn stream_name(raw: &str) -> Result<StreamName, ApiError> {
    StreamName::parse(raw).map_err(|e| ApiError::bad_field("stream", e.to_string()))
}
