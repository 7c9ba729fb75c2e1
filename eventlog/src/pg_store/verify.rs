//! The integrity walk over the whole log: every row's crc and chain hash, its record decoding
//! to the row's own position, id, stream, version and type, positions without gap, versions
//! without gap per stream, and the head row at the end of the chain.

use std::collections::HashMap;

use tokio_postgres::Client;
use uuid::Uuid;

use super::db_error;
use super::read::head;
use crate::record::decode_record;
use crate::sled_store::{chain_hash, GENESIS};
use crate::{StoreError, VerifyReport};

const PAGE: i64 = 10_000;

pub(crate) async fn verify(
    client: &Client,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let (head, head_hash) = head(client).await?;
    let mut prev = GENESIS;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut expected = 1u64;
    loop {
        let rows = client
            .query(
                "SELECT position, id, stream, version, type, record, crc, hash FROM events \
                 WHERE position >= $1 ORDER BY position LIMIT $2",
                &[&(expected as i64), &PAGE],
            )
            .await
            .map_err(db_error)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let position = row.get::<_, i64>(0) as u64;
            let corrupt = |reason: String| StoreError::Corrupt {
                position: expected,
                reason,
            };
            if position != expected {
                return Err(corrupt(format!(
                    "position gap: the next row is at {position}"
                )));
            }
            let id: Uuid = row.get(1);
            let stream: &str = row.get(2);
            let version = row.get::<_, i64>(3) as u64;
            let event_type: &str = row.get(4);
            let record: &[u8] = row.get(5);
            let crc = row.get::<_, i32>(6) as u32;
            let hash: &[u8] = row.get(7);
            let actual = crc32fast::hash(record);
            if actual != crc {
                return Err(corrupt(format!(
                    "checksum mismatch: stored {crc:08x}, computed {actual:08x}"
                )));
            }
            let next = chain_hash(&prev, record);
            if hash != next {
                return Err(corrupt(
                    "hash chain broken: the stored hash does not follow from the previous record"
                        .into(),
                ));
            }
            let ev = decode_record(record).map_err(|e| corrupt(e.to_string()))?;
            if ev.position != position
                || ev.id != id
                || ev.stream != stream
                || ev.version != version
                || ev.event_type != event_type
            {
                return Err(corrupt(format!(
                    "the record ({} {}@{} at {}) does not match its row ({id} {stream}@{version})",
                    ev.id, ev.stream, ev.version, ev.position
                )));
            }
            let want = versions.get(stream).map_or(0, |v| v + 1);
            if version != want {
                return Err(corrupt(format!(
                    "stream {stream} has version {version} here, expected {want}"
                )));
            }
            versions.insert(ev.stream, version);
            prev = next;
            if expected.is_multiple_of(4096) {
                progress(expected);
            }
            expected += 1;
        }
    }
    let last = expected - 1;
    if last != head {
        return Err(StoreError::Corrupt {
            position: last.min(head) + 1,
            reason: format!("the head row says the log ends at {head}, the rows end at {last}"),
        });
    }
    if head_hash != prev {
        return Err(StoreError::Corrupt {
            position: head,
            reason: "the head row's hash is not the chain hash of the last record".into(),
        });
    }
    progress(last);
    Ok(VerifyReport {
        events: last,
        streams: versions.len() as u64,
        head_hash: blake3::Hash::from(prev).to_hex().to_string(),
    })
}
