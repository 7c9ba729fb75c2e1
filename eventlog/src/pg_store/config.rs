//! The store's URL: `postgres://user[:password]@host[:port]/db[?schema=NAME&pool_size=N&…]`.
//! `schema` (default `dealtrail`) and `pool_size` (default [`DEFAULT_POOL_SIZE`]) are ours;
//! every other parameter goes to the driver (e.g. `connect_timeout`, `sslmode=disable`).

use std::time::Duration;

use crate::StoreError;

/// Connections in the read pool of one node. With the writer's and the listener's own
/// connection, a node holds at most this + 2: three nodes and a test's clients stay far
/// below PostgreSQL's default `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "dealtrail";

/// A parsed store URL.
#[derive(Clone)]
pub struct PgConfig {
    /// The driver's configuration (`search_path` set to `schema`).
    pub driver: tokio_postgres::Config,
    pub schema: String,
    pub pool_size: usize,
}

impl std::fmt::Debug for PgConfig {
    // Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("hosts", &self.driver.get_hosts())
            .field("dbname", &self.driver.get_dbname())
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

fn invalid(m: impl Into<String>) -> StoreError {
    StoreError::Invalid(m.into())
}

/// Whether `url` names a PostgreSQL store.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgConfig {
    /// Parses a store URL; the error names the parameter at fault (never the password).
    pub fn parse(url: &str) -> Result<PgConfig, StoreError> {
        if !is_postgres_url(url) {
            return Err(invalid(
                "a PostgreSQL store URL starts with postgres:// (e.g. postgres://postgres@127.0.0.1:5432/test?schema=dealtrail)",
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = DEFAULT_SCHEMA.to_string();
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "schema" => schema = v.to_string(),
                "pool_size" => {
                    pool_size =
                        v.parse()
                            .ok()
                            .filter(|n| (1..=64).contains(n))
                            .ok_or_else(|| {
                                invalid(format!("pool_size={v}: give a number from 1 to 64"))
                            })?
                }
                _ => passed.push(pair),
            }
        }
        check_schema(&schema)?;
        let rest = if passed.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let mut driver: tokio_postgres::Config = rest.parse().map_err(|e| {
            invalid(format!(
                "the PostgreSQL URL is not valid: {e} (e.g. postgres://user:password@host:5432/db?schema=dealtrail)"
            ))
        })?;
        driver.options(format!("-c search_path={schema}"));
        if driver.get_application_name().is_none() {
            driver.application_name("dealtrail");
        }
        if driver.get_connect_timeout().is_none() {
            driver.connect_timeout(Duration::from_secs(5));
        }
        // A connection whose peer vanished is noticed within about 20 s.
        driver.keepalives_idle(Duration::from_secs(10));
        Ok(PgConfig {
            driver,
            schema,
            pool_size,
        })
    }
}

/// A schema name we create and put in `search_path` unquoted: lower-case letters, digits
/// and `_`, not starting with a digit, at most 63 bytes.
pub fn check_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "schema={schema:?}: use 1-63 lower-case letters, digits and _, not starting with a digit or pg_"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_and_the_rest_goes_to_the_driver() {
        let c = PgConfig::parse(
            "postgres://bob:s3cret@db.local:6543/crm?schema=sales_eu&pool_size=7&connect_timeout=3",
        )
        .unwrap();
        assert_eq!((c.schema.as_str(), c.pool_size), ("sales_eu", 7));
        assert_eq!(c.driver.get_user(), Some("bob"));
        assert_eq!(c.driver.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(c.driver.get_dbname(), Some("crm"));
        assert_eq!(c.driver.get_ports(), &[6543]);
        assert_eq!(
            c.driver.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(c.driver.get_options(), Some("-c search_path=sales_eu"));
        assert!(!format!("{c:?}").contains("s3cret"));

        let d = PgConfig::parse("postgresql://postgres@127.0.0.1/test").unwrap();
        assert_eq!(
            (d.schema.as_str(), d.pool_size),
            ("dealtrail", DEFAULT_POOL_SIZE)
        );
    }

    #[test]
    fn bad_urls_name_what_is_wrong() {
        for (url, says) in [
            ("mysql://x@y/z", "postgres://"),
            ("postgres://x@y/z?schema=Bad-Name", "schema=\"Bad-Name\""),
            ("postgres://x@y/z?schema=pg_catalog", "schema="),
            ("postgres://x@y/z?pool_size=0", "pool_size=0"),
            ("postgres://x@y/z?bogus=1", "not valid"),
        ] {
            let e = PgConfig::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
