//! Reads. Every query returns the stored record bytes with their crc; the event is decoded
//! from those bytes (the columns beside them only serve the indexes). An unfiltered
//! `read_all` (catch-up) goes through `page` (binary COPY).

use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use super::db_error;
use crate::record::decode_record;
use crate::{Filter, RecordedEvent, StoreError};

/// Columns a decoded read selects, in this order.
pub(crate) const RECORD: &str = "position, record, crc";

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Decodes a row selected with [`RECORD`], checking its crc and its position.
pub(crate) fn decode(row: &Row) -> Result<RecordedEvent, StoreError> {
    decode_parts(row.get(0), row.get(1), row.get(2))
}

/// Decodes the stored record `bytes` of `position`, checking them against their `crc` and
/// the position they are stored at.
pub(crate) fn decode_parts(
    position: i64,
    bytes: &[u8],
    crc: i32,
) -> Result<RecordedEvent, StoreError> {
    let position = position as u64;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let actual = crc32fast::hash(bytes);
    if actual != crc as u32 {
        return Err(corrupt(format!(
            "checksum mismatch: stored {:08x}, computed {actual:08x}",
            crc as u32
        )));
    }
    let ev = decode_record(bytes).map_err(|e| corrupt(e.to_string()))?;
    if ev.position != position {
        return Err(corrupt(format!(
            "record says position {} but is stored at {position}",
            ev.position
        )));
    }
    Ok(ev)
}

pub(crate) fn decode_all(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(decode).collect()
}

/// The head row: (position, chain hash) of the last committed event.
pub(crate) async fn head(c: &impl GenericClient) -> Result<(u64, [u8; 32]), StoreError> {
    let row = c
        .query_one("SELECT position, hash FROM head WHERE id = 1", &[])
        .await
        .map_err(db_error)?;
    head_of(&row)
}

pub(crate) fn head_of(row: &Row) -> Result<(u64, [u8; 32]), StoreError> {
    let position: i64 = row.get(0);
    let hash: &[u8] = row.get(1);
    let hash = hash.try_into().map_err(|_| StoreError::Corrupt {
        position: position as u64,
        reason: "the head row's hash is not 32 bytes".into(),
    })?;
    Ok((position as u64, hash))
}

pub(crate) async fn read_stream(
    c: &Client,
    stream: &str,
    from_version: u64,
    n: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT {RECORD} FROM events WHERE stream = $1 AND version >= $2 \
                 ORDER BY version LIMIT $3"
            ),
            &[&stream, &int(from_version), &limit(n)],
        )
        .await
        .map_err(db_error)?;
    decode_all(&rows)
}

pub(crate) async fn read_all(
    c: &Client,
    from_position: u64,
    n: usize,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if filter.types.is_empty() && filter.stream_prefix.is_none() {
        return super::page::page(c, from_position, n).await;
    }
    let types: Option<&[String]> = (!filter.types.is_empty()).then_some(&filter.types[..]);
    let rows = c
        .query(
            &format!(
                "SELECT {RECORD} FROM events WHERE position >= $1 \
                 AND ($2::text[] IS NULL OR type = ANY($2)) \
                 AND ($3::text IS NULL OR starts_with(stream, $3)) \
                 ORDER BY position LIMIT $4"
            ),
            &[
                &int(from_position.max(1)),
                &types,
                &filter.stream_prefix,
                &limit(n),
            ],
        )
        .await
        .map_err(db_error)?;
    decode_all(&rows)
}

pub(crate) async fn chain_hash_at(
    c: &Client,
    position: u64,
) -> Result<Option<[u8; 32]>, StoreError> {
    let row = c
        .query_opt(
            "SELECT hash FROM events WHERE position = $1",
            &[&int(position)],
        )
        .await
        .map_err(db_error)?;
    row.map(|r| {
        let h: &[u8] = r.get(0);
        h.try_into().map_err(|_| StoreError::Corrupt {
            position,
            reason: "the stored chain hash is not 32 bytes".into(),
        })
    })
    .transpose()
}

pub(crate) async fn stream_version(c: &Client, stream: &str) -> Result<Option<u64>, StoreError> {
    let row = c
        .query_one(
            "SELECT max(version) FROM events WHERE stream = $1",
            &[&stream],
        )
        .await
        .map_err(db_error)?;
    Ok(row.get::<_, Option<i64>>(0).map(|v| v as u64))
}

pub(crate) async fn event_by_id(c: &Client, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
    let row = c
        .query_opt(
            &format!("SELECT {RECORD} FROM events WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db_error)?;
    row.as_ref().map(decode).transpose()
}
