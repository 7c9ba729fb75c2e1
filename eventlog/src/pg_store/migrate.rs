//! The schema, as embedded, versioned migrations run at start (by every node; the first
//! one to take the advisory lock applies what is missing, the others then find it done).
//! A migration is never edited once released: a change is a new entry at the end.

use tokio_postgres::Client;

use super::db_error;
use crate::StoreError;

/// Serialises migrations of every dealtrail node on the database (any value, fixed).
const MIGRATION_LOCK: i64 = 0x6465_616c_7472_6169;

/// `(version, what it does, SQL)`, in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "events, head, documents",
        r#"
    -- One row per event. `record` is the event as encoded by `eventlog::record` (the same
    -- bytes the sled store frames), `crc` its crc32 and `hash` the chain hash
    -- blake3(previous hash || record): the same chain as the sled store, so a copied log
    -- has the same head hash. Streams compare bytewise (C collation) so that a prefix is a
    -- range of the (stream, version) index.
    CREATE TABLE events (
        position bigint PRIMARY KEY CHECK (position > 0),
        id uuid NOT NULL UNIQUE,
        stream text COLLATE "C" NOT NULL,
        version bigint NOT NULL CHECK (version >= 0),
        type text NOT NULL,
        record bytea NOT NULL,
        crc integer NOT NULL,
        hash bytea NOT NULL,
        UNIQUE (stream, version)
    );
    -- The one row every appending transaction locks first (SELECT … FOR UPDATE) and moves
    -- forward: appends from every node are serialised on it, so positions are taken in
    -- commit order and a reader can never see position n+1 before n.
    CREATE TABLE head (
        id smallint PRIMARY KEY CHECK (id = 1),
        position bigint NOT NULL,
        hash bytea NOT NULL
    );
    INSERT INTO head VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');
    -- The API's own state shared by every node (tokens, consumer checkpoints): one JSON
    -- document per key, per kind.
    CREATE TABLE documents (
        kind text NOT NULL,
        key text NOT NULL,
        body jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, key)
    );
    "#,
    ),
    (
        2,
        "personal_keys",
        r#"
    -- The key of each person (customer or lead) whose personal data the log holds sealed
    -- (SPEC §7; see eventlog::personal): never in the log. An erasure sets `key` to NULL
    -- (and the table is rewritten: VACUUM FULL), keeping the row as the person's tombstone.
    CREATE TABLE personal_keys (
        person text COLLATE "C" PRIMARY KEY,
        key bytea CHECK (key IS NULL OR length(key) = 32),
        created_at timestamptz NOT NULL DEFAULT now(),
        erased_at timestamptz
    );
    "#,
    ),
];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Creates `schema` if absent and applies the missing migrations, in one transaction.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    // `schema` was checked (`config::check_schema`): safe unquoted.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(db_error)?;
    let applied: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(db_error)?
        .get(0);
    let applied = applied.unwrap_or(0);
    if applied > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "the store's schema {schema} is at version {applied}, newer than this dealtrail \
             knows ({SCHEMA_VERSION}): use a newer dealtrail"
        )));
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .await
        .map_err(db_error)?;
        tracing::info!(schema, version, description, "applied a schema migration");
    }
    tx.commit().await.map_err(db_error)
}
