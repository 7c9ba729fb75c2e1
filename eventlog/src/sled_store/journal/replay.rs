//! Reading the journal back at open: the records of each region, damage told from the end
//! of what was written, and the records that continue sled's log (see the parent module's
//! documentation for the rules).

use std::io;
use std::path::Path;

use super::{slot, Header, HEADER, MAGIC, NAME, REGION, SECTOR};
use crate::sled_store::fault::{at, io_error};
use crate::sled_store::outside::Pointer;
use crate::sled_store::{keys, read, Sled};
use crate::StoreError;

/// A record read back. `chunks` is `None` when its header is intact but its payload is not.
pub(super) struct Record {
    pub first: u64,
    pub last: u64,
    pub chunks: Option<Vec<(u64, Vec<u8>)>>,
}

/// What a region holds, in the order written.
pub(super) enum Item {
    /// The region's marker: the first position of its turn. Sled holds every position
    /// before it durably (see the parent module).
    Marker(u64),
    Record(Record),
    /// A damaged header: a record was there. Its positions, as far as its neighbours tell.
    Damaged {
        first: Option<u64>,
        last: Option<u64>,
    },
}

/// What a slot holds.
enum Slot {
    Empty,
    Header(Header),
    Damaged,
}

fn slot_at(region: &[u8], at: usize) -> Slot {
    let Some(bytes) = region.get(at..at + HEADER) else {
        return Slot::Empty;
    };
    if bytes.iter().map(|b| b.count_ones()).sum::<u32>() <= 4 {
        return Slot::Empty;
    }
    let header = bytes.try_into().ok().and_then(Header::parse);
    match header {
        Some(h)
            if h.len as usize <= region.len() - at - HEADER
                && (h.len > 0 && h.first <= h.last
                    || h.len == 0 && h.last.checked_add(1) == Some(h.first)) =>
        {
            Slot::Header(h)
        }
        _ => Slot::Damaged,
    }
}

/// The chunks of an intact payload, `None` if it fails its CRC or does not split into chunks.
fn chunks(payload: &[u8], crc: u32) -> Option<Vec<(u64, Vec<u8>)>> {
    if crc32fast::hash(payload) != crc {
        return None;
    }
    split_chunks(payload)
}

fn split_chunks(payload: &[u8]) -> Option<Vec<(u64, Vec<u8>)>> {
    let mut rest = payload;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let first = u64::from_le_bytes(rest.get(0..8)?.try_into().ok()?);
        let n = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
        chunks.push((first, rest.get(12..12usize.checked_add(n)?)?.to_vec()));
        rest = &rest[12 + n..];
    }
    Some(chunks)
}

/// The first intact header after `from` with this `salt` and positions after `after` (a
/// record of the same turn: earlier turns hold earlier positions).
fn next_header(region: &[u8], from: usize, salt: u64, after: u64) -> Option<usize> {
    memchr::memmem::find_iter(&region[from..], &MAGIC)
        .map(|i| from + i)
        .filter(|&q| q as u64 % SECTOR + HEADER as u64 <= SECTOR)
        .find(|&q| {
            matches!(slot_at(region, q), Slot::Header(h) if h.salt == salt && h.len > 0 && h.first > after)
        })
}

/// The records of one region, in the order written (see the module's documentation).
pub(super) fn read_region(region: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    if region.starts_with(&legacy::MAGIC) {
        return legacy::read_region(region);
    }
    // The marker gives the salt and the position before the first record.
    let (mut salt, mut prev_last) = match slot_at(region, 0) {
        Slot::Empty => return items, // not used since the journal was emptied
        Slot::Header(h) if h.len == 0 => {
            items.push(Item::Marker(h.first));
            (Some(h.salt), Some(h.last))
        }
        _ => (None, None),
    };
    let mut at = HEADER;
    while at + HEADER <= region.len() {
        match slot_at(region, at) {
            Slot::Empty => break,
            Slot::Header(h) if h.len > 0 && salt.is_none_or(|s| s == h.salt) => {
                let payload = &region[at + HEADER..at + HEADER + h.len as usize];
                items.push(Item::Record(Record {
                    first: h.first,
                    last: h.last,
                    chunks: chunks(payload, h.payload_crc),
                }));
                salt = Some(h.salt);
                prev_last = Some(h.last);
                at = slot((at + HEADER) as u64 + u64::from(h.len)) as usize;
            }
            _ => {
                // A damaged header: look for the next record of this turn.
                let next = match (salt, prev_last) {
                    (Some(salt), Some(after)) => next_header(region, at + 1, salt, after),
                    _ => None,
                };
                let first = prev_last.map(|p| p + 1);
                let last = next.and_then(|q| match slot_at(region, q) {
                    Slot::Header(h) => h.first.checked_sub(1),
                    _ => None,
                });
                items.push(Item::Damaged { first, last });
                match next {
                    Some(q) => at = q,
                    None => break,
                }
            }
        }
    }
    items
}

/// The first journal format (`DTJ1`), left by an earlier version: records from the start of
/// each region, one CRC over header and payload, up to the first that is not whole.
mod legacy {
    use super::{split_chunks, Item, Record};

    pub(super) const MAGIC: [u8; 4] = *b"DTJ1";
    const HEADER: usize = 28;

    pub(super) fn read_region(region: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        let mut at = 0;
        while let Some((record, end)) = record_at(region, at) {
            items.push(Item::Record(record));
            at = end;
        }
        items
    }

    fn record_at(data: &[u8], at: usize) -> Option<(Record, usize)> {
        let header = data.get(at..at.checked_add(HEADER)?)?;
        if header[0..4] != MAGIC {
            return None;
        }
        let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
        let end = at.checked_add(HEADER)?.checked_add(len)?;
        let body = data.get(at + 12..end)?;
        if crc32fast::hash(body) != crc {
            return None;
        }
        let first = u64::from_le_bytes(header[12..20].try_into().ok()?);
        let last = u64::from_le_bytes(header[20..28].try_into().ok()?);
        let chunks = split_chunks(&data[at + HEADER..end])?;
        Some((
            Record {
                first,
                last,
                chunks: Some(chunks),
            },
            end,
        ))
    }
}

/// Positions that only the journal holds and that it cannot give back.
struct Lost {
    first: u64,
    last: Option<u64>,
    why: &'static str,
}

/// The records of the journal `data` that continue a log ending at `tail`, in order; or
/// `Corrupt` naming the first positions after `tail` that are unreadable.
pub(super) fn continuation(data: &[u8], tail: u64) -> Result<Vec<Record>, StoreError> {
    let mut intact = Vec::new();
    let mut lost = Vec::new();
    // Sled held every position before the earliest marker durably.
    let mut floor: Option<u64> = None;
    for region in data.chunks(REGION as usize) {
        for item in read_region(region) {
            match item {
                Item::Marker(first) => {
                    floor = Some(floor.map_or(first - 1, |f| f.min(first - 1)));
                }
                Item::Record(r) if r.last <= tail => {} // sled has these
                Item::Record(r) if r.first <= tail => {
                    return Err(StoreError::Corrupt {
                        position: tail + 1,
                        reason: format!(
                            "the journal holds positions {}..={} but the log ends at {tail}",
                            r.first, r.last
                        ),
                    })
                }
                Item::Record(Record {
                    first,
                    last,
                    chunks: None,
                }) => lost.push(Lost {
                    first,
                    last: Some(last),
                    why: "their record in the commit journal is damaged",
                }),
                Item::Record(r) => intact.push(r),
                Item::Damaged { first, last } => {
                    let harmless =
                        first.is_some_and(|f| f <= tail) || last.is_some_and(|l| l <= tail);
                    if !harmless {
                        lost.push(Lost {
                            first: first.map_or(tail + 1, |f| f.max(tail + 1)),
                            last,
                            why: "the header of their record in the commit journal is damaged",
                        });
                    }
                }
            }
        }
    }
    intact.sort_by_key(|r| r.first);
    let mut next = tail + 1;
    let mut run = Vec::new();
    for record in intact {
        if record.first < next {
            return Err(StoreError::Corrupt {
                position: record.first,
                reason: format!(
                    "the commit journal holds positions {}..={} twice",
                    record.first,
                    next - 1
                ),
            });
        }
        if record.first > next {
            lost.push(Lost {
                first: next,
                last: Some(record.first - 1),
                why: "the commit journal holds later positions but not these",
            });
            break;
        }
        next = record
            .last
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt {
                position: record.last,
                reason: "the journal holds a record past the last possible position".into(),
            })?;
        run.push(record);
    }
    if let Some(floor) = floor.filter(|&f| f >= next) {
        lost.push(Lost {
            first: next,
            last: Some(floor),
            why: "the store's files no longer hold them, though they did durably",
        });
    }
    match lost.into_iter().min_by_key(|l| l.first) {
        None => Ok(run),
        Some(l) => Err(StoreError::Corrupt {
            position: l.first,
            reason: format!(
                "events {} are not in the store's files and {}; the store refuses to open \
                 without them (restore the data directory from a backup, or move `{NAME}` \
                 aside to open the store without them)",
                match l.last {
                    Some(last) => format!("at positions {}..={last}", l.first),
                    None => format!("from position {} on", l.first),
                },
                l.why
            ),
        }),
    }
}

/// Inserts in `tree` the journal's records that continue its log (see the module's
/// documentation), after which the caller must flush sled. Returns how many events it added.
pub(crate) fn replay(dir: &Path, sled: &Sled) -> Result<u64, StoreError> {
    let data = match std::fs::read(dir.join(NAME)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("cannot read the commit journal", e)),
    };
    let tree = &sled.tree;
    let restored = restore_lost_outside_chunks(&data, sled)?;
    if restored > 0 {
        tracing::warn!(
            chunks = restored,
            "the chunk file had lost log chunks the commit journal still held: put back"
        );
    }
    let tail = read::tail(sled)?.position;
    let mut added = 0;
    for record in continuation(&data, tail)? {
        for (first, chunk) in record.chunks.unwrap_or_default() {
            tree.insert(keys::log_key(first), chunk)
                .map_err(at(first))?;
        }
        added += record.last - record.first + 1;
    }
    if added > 0 {
        tracing::info!(events = added, "replayed the commit journal");
    }
    Ok(added)
}

/// Puts back, from the journal, the chunks that sled points to in the chunk file but that
/// the file has lost (or holds damaged): a power loss after sled flushed their pointers by
/// itself, before the file was synced (see `outside`). They go into sled, in place of their
/// pointers. Returns how many.
fn restore_lost_outside_chunks(data: &[u8], sled: &Sled) -> Result<usize, StoreError> {
    let mut restored = 0;
    for region in data.chunks(REGION as usize) {
        for item in read_region(region) {
            let Item::Record(Record {
                chunks: Some(chunks),
                ..
            }) = item
            else {
                continue;
            };
            for (first, chunk) in chunks {
                let key = keys::log_key(first);
                let Some(value) = sled.tree.get(key).map_err(at(first))? else {
                    continue;
                };
                let Ok(Some(pointer)) = Pointer::of(&value) else {
                    continue;
                };
                let same =
                    pointer.len as usize == chunk.len() && pointer.crc == crc32fast::hash(&chunk);
                if same && sled.checked_chunk(first, value).is_err() {
                    sled.tree.insert(key, chunk).map_err(at(first))?;
                    restored += 1;
                }
            }
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::super::{Journal, SledFlush};
    use super::*;

    /// A journal of groups 1..=2, 3, 4..=6, 7, 8 (region 0), read back; and where each
    /// record's header is.
    fn journal() -> (Vec<u8>, Vec<usize>) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 0).unwrap();
        let mut headers = Vec::new();
        for (first, last) in [(1, 2), (3, 3), (4, 6), (7, 7), (8, 8)] {
            headers.push(j.offset as usize);
            j.begin(first, last);
            for p in first..=last {
                j.add_chunk(p, format!("event {p}").as_bytes());
            }
            j.write(&SledFlush::new(0)).unwrap();
        }
        (std::fs::read(dir.path().join(NAME)).unwrap(), headers)
    }

    fn firsts(data: &[u8], tail: u64) -> Result<Vec<u64>, StoreError> {
        Ok(continuation(data, tail)?.iter().map(|r| r.first).collect())
    }

    fn refused(data: &[u8], tail: u64) -> (u64, String) {
        match continuation(data, tail) {
            Err(StoreError::Corrupt { position, reason }) => (position, reason),
            Err(e) => panic!("{e}"),
            Ok(run) => panic!("opened with {} records", run.len()),
        }
    }

    #[test]
    fn damage_to_a_record_sled_has_loses_none_of_the_later_ones() {
        let (data, headers) = journal();
        assert_eq!(firsts(&data, 3).unwrap(), [4, 7, 8]);
        // Sled has 1..=3. Its payload, or any part of its header, damaged:
        for at in [
            headers[0] + HEADER + 5,
            headers[0],
            headers[0] + 9,
            headers[0] + 17,
            headers[0] + 39,
            headers[1] + 30,
        ] {
            let mut d = data.clone();
            d[at] ^= 0x10;
            assert_eq!(firsts(&d, 3).unwrap(), [4, 7, 8], "flip at {at}");
        }
    }

    #[test]
    fn damage_to_a_record_only_the_journal_holds_refuses_naming_its_positions() {
        let (data, headers) = journal();
        // Sled has 1..=3; 4..=6 is damaged in its payload, then in its header.
        let mut d = data.clone();
        d[headers[2] + HEADER + 20] ^= 1;
        let (position, reason) = refused(&d, 3);
        assert_eq!(position, 4);
        assert!(reason.contains("4..=6"), "{reason}");
        let mut d = data.clone();
        d[headers[2] + 26] ^= 1; // its first position
        let (position, reason) = refused(&d, 3);
        assert_eq!(position, 4);
        assert!(reason.contains("4..=6"), "{reason}");
        // The last record's header: nothing after it tells its end.
        let mut d = data.clone();
        d[headers[4] + 2] ^= 1;
        let (position, reason) = refused(&d, 3);
        assert_eq!(position, 8);
        assert!(reason.contains("from position 8"), "{reason}");
        // A damaged marker alone harms nothing.
        let mut d = data.clone();
        d[3] ^= 1;
        assert_eq!(firsts(&d, 3).unwrap(), [4, 7, 8]);
    }

    #[test]
    fn a_flipped_bit_in_the_zeros_after_the_last_record_is_still_the_end() {
        let (mut data, headers) = journal();
        let end = headers[4] + HEADER + 12 + "event 8".len();
        let end = slot(end as u64) as usize;
        data[end + 7] ^= 0x20;
        assert_eq!(firsts(&data, 0).unwrap(), [1, 3, 4, 7, 8]);
    }

    /// Event data is chosen by clients: a record written inside it must not be taken for one
    /// of the journal's when the search after a damaged header passes over it.
    #[test]
    fn a_record_hidden_in_event_data_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 0).unwrap();
        let forged_payload = [3u64.to_le_bytes().as_slice(), &4u32.to_le_bytes(), b"evil"].concat();
        let forged = Header {
            salt: 42,
            len: forged_payload.len() as u32,
            payload_crc: crc32fast::hash(&forged_payload),
            first: 3,
            last: 3,
        };
        let mut data_with_record = vec![b'x'; SECTOR as usize - 100];
        data_with_record.extend_from_slice(&forged.to_bytes());
        data_with_record.extend_from_slice(&forged_payload);
        let second = {
            j.begin(1, 1);
            j.add_chunk(1, b"one");
            j.write(&SledFlush::new(0)).unwrap();
            j.offset as usize
        };
        j.begin(2, 2);
        j.add_chunk(2, &data_with_record);
        j.write(&SledFlush::new(0)).unwrap();
        let mut data = std::fs::read(dir.path().join(NAME)).unwrap();
        data[second + 1] ^= 1;
        // Sled has 1..=2: the forged 3 is not replayed.
        assert!(firsts(&data, 2).unwrap().is_empty());
    }

    /// A journal left by a version before the current format still gives its records back.
    #[test]
    fn a_journal_of_the_first_format_is_replayed() {
        let mut data = vec![0u8; 2 * REGION as usize];
        let mut at = 0;
        for (first, bytes) in [(3u64, b"three"), (4, b"four!")] {
            let payload = [first.to_le_bytes().as_slice(), &5u32.to_le_bytes(), bytes].concat();
            let mut body = [first.to_le_bytes(), first.to_le_bytes()].concat();
            body.extend_from_slice(&payload);
            let mut record = legacy::MAGIC.to_vec();
            record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            record.extend_from_slice(&body);
            data[at..at + record.len()].copy_from_slice(&record);
            at += record.len();
        }
        let run = continuation(&data, 2).unwrap();
        let chunks: Vec<_> = run.into_iter().flat_map(|r| r.chunks.unwrap()).collect();
        assert_eq!(chunks, vec![(3, b"three".to_vec()), (4, b"four!".to_vec())]);
    }
}
