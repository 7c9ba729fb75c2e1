//! The read model's snapshot file, and why it can be trusted.
//!
//! The snapshot (`<data>/projections/readmodel.json`) saves a start from replaying the whole
//! log; it is a cache, never a source of truth. So it is only used when it is provably the
//! model of *this* log up to a position:
//!
//! ```text
//! {"format":3,"position":N,"chain":"<hex>","checksum":"<hex>"}\n
//! <the model as JSON>
//! ```
//!
//! - `checksum`: blake3 of the model's bytes (the second part). An edited, truncated or
//!   bit-flipped model fails it.
//! - `position` and `chain`: the log position the model reflects and the log's chain hash
//!   after the event there (`EventStore::chain_hash_at`). A snapshot of another log (the
//!   data directory's log replaced, or a snapshot copied from elsewhere) fails it, and so
//!   does one ahead of the log.
//!
//! A snapshot that fails any check is named in a warning and ignored: the model is rebuilt
//! from the log. `dealtrail verify` runs the same checks and reports a failure.

use std::path::{Path, PathBuf};

use eventlog::{EventStore, StoreError};
use projections::ReadModel;
use serde::{Deserialize, Serialize};

/// 4: deals are stored as their ops only (the domain's `DealOp`: quotes carry their amount,
/// payments their installment); their folds are folded again when the model is read back.
const FORMAT: u32 = 4;

/// Where a data directory keeps its snapshot.
pub fn path(data: &Path) -> PathBuf {
    data.join("projections").join("readmodel.json")
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    position: u64,
    /// The chain hash after `position` (hex), `None` for position 0.
    chain: Option<String>,
    checksum: String,
}

/// What a snapshot file holds, checked against the log.
#[derive(Debug)]
pub enum Check {
    /// No snapshot file.
    Absent,
    /// Intact and tied to this log: the model at `position`.
    Valid(Box<ReadModel>),
    /// Unusable, and why (the model must be rebuilt).
    Invalid(String),
}

/// The first line of the snapshot file for `model_json` at `position`, given the log's chain
/// hash there: the header and its newline. The file is this followed by `model_json` itself
/// (written as two parts, so that a big model is not copied).
pub fn header(position: u64, chain: Option<[u8; 32]>, model_json: &[u8]) -> Vec<u8> {
    let header = Header {
        format: FORMAT,
        position,
        chain: chain.map(|h| blake3::Hash::from_bytes(h).to_hex().to_string()),
        checksum: blake3::hash(model_json).to_hex().to_string(),
    };
    let mut out = serde_json::to_vec(&header).expect("a header always serialises");
    out.push(b'\n');
    out
}

/// Reads and checks the snapshot at `file` against `store`'s log. Only a failure to read
/// the log is an error; everything wrong with the file is [`Check::Invalid`].
pub async fn check(file: &Path, store: &dyn EventStore) -> Result<Check, StoreError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Check::Absent),
        Err(e) => return Ok(Check::Invalid(format!("cannot read it: {e}"))),
    };
    let (header, body) = match split(&bytes) {
        Ok(parts) => parts,
        Err(why) => return Ok(Check::Invalid(why)),
    };
    let last = store.last_position().await?;
    if header.position > last {
        return Ok(Check::Invalid(format!(
            "it reflects position {} but the log ends at {last}",
            header.position
        )));
    }
    let chain = store
        .chain_hash_at(header.position)
        .await?
        .map(|h| blake3::Hash::from_bytes(h).to_hex().to_string());
    if chain != header.chain {
        return Ok(Check::Invalid(format!(
            "it was not made from this log (the chain hash at position {} differs)",
            header.position
        )));
    }
    let model: ReadModel = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(e) => return Ok(Check::Invalid(format!("its model does not parse: {e}"))),
    };
    if model.last_position != header.position {
        return Ok(Check::Invalid(format!(
            "its model says position {} but its header {}",
            model.last_position, header.position
        )));
    }
    Ok(Check::Valid(Box::new(model)))
}

/// The header and the model's bytes, once the checksum matched.
fn split(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("it has no header (a snapshot from before checksums)")?;
    let (head, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header: Header = serde_json::from_slice(head)
        .map_err(|_| "its header is unreadable (a snapshot from before checksums?)".to_string())?;
    if header.format != FORMAT {
        return Err(format!("unknown snapshot format {}", header.format));
    }
    if blake3::hash(body).to_hex().as_str() != header.checksum {
        return Err("its checksum does not match its contents (the file was changed)".into());
    }
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_anywhere_in_the_model_fails_the_checksum() {
        let model = br#"{"last_position":3,"amount":1200}"#;
        let bytes = [header(3, Some([9; 32]), model).as_slice(), model].concat();
        assert!(split(&bytes).is_ok());
        let body_start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        for i in body_start..bytes.len() {
            let mut spoiled = bytes.clone();
            spoiled[i] ^= 0x01;
            let err = split(&spoiled).err().unwrap_or_default();
            assert!(err.contains("checksum"), "byte {i}: {err:?}");
        }
    }

    #[test]
    fn a_snapshot_without_header_is_refused_by_name() {
        let err = split(br#"{"last_position":3}"#).err().unwrap();
        assert!(err.contains("before checksums"), "{err}");
    }
}
