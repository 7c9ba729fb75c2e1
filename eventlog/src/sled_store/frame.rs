//! The frame around an encoded record as stored under its log key:
//! `record bytes || crc32(record bytes) (LE) || chain hash (32 bytes)`,
//! where `chain hash = blake3(previous chain hash || record bytes)` and the hash before
//! position 1 is all zeros. The record bytes start with their format byte (see `record`).

pub const CRC_LEN: usize = 4;
pub const HASH_LEN: usize = 32;
pub const TRAILER_LEN: usize = CRC_LEN + HASH_LEN;

/// The hash "before" the first record.
pub const GENESIS: [u8; HASH_LEN] = [0; HASH_LEN];

/// A stored value split into its parts.
pub struct Frame<'a> {
    pub record: &'a [u8],
    pub crc: u32,
    pub hash: [u8; HASH_LEN],
}

pub fn chain_hash(prev: &[u8; HASH_LEN], record: &[u8]) -> [u8; HASH_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(record);
    *h.finalize().as_bytes()
}

/// Frames `record` after `prev`; returns the stored bytes and the new chain hash.
pub fn seal(prev: &[u8; HASH_LEN], record: &[u8]) -> (Vec<u8>, [u8; HASH_LEN]) {
    let hash = chain_hash(prev, record);
    let mut out = Vec::with_capacity(record.len() + TRAILER_LEN);
    out.extend_from_slice(record);
    out.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
    out.extend_from_slice(&hash);
    (out, hash)
}

/// Splits a stored value; `Err` if it is too short to hold a frame.
pub fn split(value: &[u8]) -> Result<Frame<'_>, String> {
    if value.len() <= TRAILER_LEN {
        return Err(format!(
            "stored value of {} bytes is too short",
            value.len()
        ));
    }
    let (record, trailer) = value.split_at(value.len() - TRAILER_LEN);
    let (crc, hash) = trailer.split_at(CRC_LEN);
    Ok(Frame {
        record,
        crc: u32::from_le_bytes(crc.try_into().map_err(|_| "bad crc field".to_string())?),
        hash: hash.try_into().map_err(|_| "bad hash field".to_string())?,
    })
}

impl Frame<'_> {
    /// `Err` with a reason if the checksum does not match the record bytes.
    pub fn check_crc(&self) -> Result<(), String> {
        let actual = crc32fast::hash(self.record);
        if actual == self.crc {
            Ok(())
        } else {
            Err(format!(
                "checksum mismatch: stored {:08x}, computed {actual:08x}",
                self.crc
            ))
        }
    }
}
