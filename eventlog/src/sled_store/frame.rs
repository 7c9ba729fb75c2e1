//! Framing of encoded records inside a chunk (see `keys`). One frame is
//! `len (u32 LE) || record bytes || crc32(record bytes) (LE) || chain hash (32 bytes)`,
//! where `chain hash = blake3(previous chain hash || record bytes)` and the hash before
//! position 1 is all zeros. The record bytes start with their format byte (see `record`).
//! A chunk is frames back to back.

pub const LEN_LEN: usize = 4;
pub const CRC_LEN: usize = 4;
pub const HASH_LEN: usize = 32;

/// The hash "before" the first record.
pub const GENESIS: [u8; HASH_LEN] = [0; HASH_LEN];

/// One frame of a chunk, split into its parts.
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

/// Appends the frame of `record` (following `prev` in the chain) to `chunk`; returns the new
/// chain hash. (The writer uses [`seal_encoded`]; tests build frames by hand with this.)
#[cfg(test)]
pub fn seal_into(chunk: &mut Vec<u8>, prev: &[u8; HASH_LEN], record: &[u8]) -> [u8; HASH_LEN] {
    let hash = chain_hash(prev, record);
    chunk.extend_from_slice(&(record.len() as u32).to_le_bytes());
    chunk.extend_from_slice(record);
    chunk.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
    chunk.extend_from_slice(&hash);
    hash
}

/// Like `seal_into` (tests only) for the record that `encode` appends to `chunk` (no separate buffer).
pub fn seal_encoded(
    chunk: &mut Vec<u8>,
    prev: &[u8; HASH_LEN],
    encode: impl FnOnce(&mut Vec<u8>),
) -> [u8; HASH_LEN] {
    let at = chunk.len();
    chunk.extend_from_slice(&[0; LEN_LEN]);
    encode(chunk);
    let record = &chunk[at + LEN_LEN..];
    let len = (record.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(record).to_le_bytes();
    let hash = chain_hash(prev, record);
    chunk[at..at + LEN_LEN].copy_from_slice(&len);
    chunk.extend_from_slice(&crc);
    chunk.extend_from_slice(&hash);
    hash
}

/// Iterates over the frames of a chunk; an item is `Err` (and the last) where the chunk
/// cannot be split further.
pub fn frames(chunk: &[u8]) -> Frames<'_> {
    Frames { rest: chunk }
}

pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = split_one(self.rest);
        match r {
            Ok((frame, rest)) => {
                self.rest = rest;
                Some(Ok(frame))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn split_one(bytes: &[u8]) -> Result<(Frame<'_>, &[u8]), String> {
    let short = || format!("truncated frame ({} bytes left in the chunk)", bytes.len());
    let (len, rest) = bytes.split_first_chunk::<LEN_LEN>().ok_or_else(short)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len == 0 || rest.len() < len + CRC_LEN + HASH_LEN {
        return Err(format!(
            "frame length {len} does not fit the {} bytes left in the chunk",
            rest.len()
        ));
    }
    let (record, rest) = rest.split_at(len);
    let (crc, rest) = rest.split_first_chunk::<CRC_LEN>().ok_or_else(short)?;
    let (hash, rest) = rest.split_first_chunk::<HASH_LEN>().ok_or_else(short)?;
    Ok((
        Frame {
            record,
            crc: u32::from_le_bytes(*crc),
            hash: *hash,
        },
        rest,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_in_place_frames_like_sealing_a_record() {
        let prev = [7u8; HASH_LEN];
        let (mut a, mut b) = (vec![1, 2, 3], vec![1, 2, 3]);
        let ha = seal_into(&mut a, &prev, b"record bytes");
        let hb = seal_encoded(&mut b, &prev, |out| out.extend_from_slice(b"record bytes"));
        assert_eq!((a, ha), (b.clone(), hb));
        let f = frames(&b[3..]).next().unwrap().unwrap();
        assert_eq!(f.record, b"record bytes");
        assert!(f.check_crc().is_ok());
        assert_eq!(f.hash, chain_hash(&prev, b"record bytes"));
    }
}
