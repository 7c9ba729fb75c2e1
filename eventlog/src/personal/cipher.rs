//! One personal field, sealed with its person's key: AES-256-GCM (RustCrypto `aes-gcm`; AES-NI
//! and CLMUL where the CPU has them) with a synthetic nonce.
//!
//! Stored form of a sealed text, in place of the text in the event's `data`:
//!
//! ```text
//! $dt-sealed-1$<person stream>$<base64url(nonce 12 bytes ‖ ciphertext ‖ tag 16 bytes)>
//! $dt-sealed-1$<person stream>$~<base64url(…)>      (sealed without an event id)
//! ```
//!
//! - For an event sent with its id, the nonce is derived, not drawn: the first 12 bytes of
//!   a BLAKE3 keyed hash (a subkey of the person's key) of the person, the event id, the
//!   field name and the text. The same event sent again seals to the same bytes, so the
//!   store's idempotency (same id, same content: a no-op) keeps working; two different texts
//!   share a nonce under one key only if the hash collides on 96 bits (SIV-style). An event
//!   without an id (the store assigns one) gets a nonce that is never derived twice: the same
//!   keyed hash over a random salt drawn once per process and a count of such nonces (as
//!   good as a random nonce, without a system call per field).
//! - The associated data is the person, the event id (when given) and the field: a sealed
//!   value copied into another person's event or another field does not open.
//! - The person named in clear is the key's owner (a deal's notes are sealed with its
//!   customer's key): a reader finds the key without knowing which deal is whose.

use aes_gcm::aead::{Aead, AeadInPlace, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What starts every sealed value.
pub const PREFIX: &str = "$dt-sealed-1$";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The key of one person (customer or lead): 32 bytes from the OS random source.
#[derive(Clone)]
pub struct PersonKey {
    aead: [u8; 32],
    /// The cipher with its key schedule, made once per key.
    cipher: Aes256Gcm,
    /// BLAKE3-derived subkey for the synthetic nonces.
    nonce_key: [u8; 32],
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonKey(..)")
    }
}

impl PersonKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> std::io::Result<PersonKey> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(PersonKey::from_bytes(bytes))
    }

    pub fn from_bytes(aead: [u8; 32]) -> PersonKey {
        PersonKey {
            nonce_key: blake3::derive_key("dealtrail personal data nonce v1", &aead),
            cipher: Aes256Gcm::new(&aead.into()),
            aead,
        }
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.aead
    }
}

/// Marks a value sealed without an event id (a random nonce): `…$<person>$~<base64>`
/// (`~` is not in the base64url alphabet).
const NO_ID: char = '~';

/// The bytes the AEAD authenticates beside the text.
fn associated(person: &str, event_id: Option<&uuid::Uuid>, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(person.len() + field.len() + 18);
    aad.extend_from_slice(person.as_bytes());
    aad.push(0);
    if let Some(id) = event_id {
        aad.extend_from_slice(id.as_bytes());
    }
    aad.extend_from_slice(field.as_bytes());
    aad
}

/// How many nonces of events without an id this process has made.
static NONCES: AtomicU64 = AtomicU64::new(0);

/// 16 bytes from the operating system's random source, drawn once per process (if it has
/// none, the clock and the process id: unique enough beside the count, and keys could not
/// have been made either).
fn nonce_salt() -> &'static [u8; 16] {
    static SALT: OnceLock<[u8; 16]> = OnceLock::new();
    SALT.get_or_init(|| {
        let mut salt = [0u8; 16];
        if getrandom::getrandom(&mut salt).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            salt[..8].copy_from_slice(&nanos.to_le_bytes());
            salt[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        salt
    })
}

/// `text` sealed for `person` (see the module doc). An event sent without an id (the store
/// assigns one) cannot be sent again as the same event: its fields get a random nonce and
/// are bound to the person and the field only, and the store is spared the id look-ups
/// that an id assigned here would cost it.
pub fn seal(
    key: &PersonKey,
    person: &str,
    event_id: Option<&uuid::Uuid>,
    field: &str,
    text: &str,
) -> String {
    let aad = associated(person, event_id, field);
    let mut nonce = [0u8; NONCE_LEN];
    let mut h = blake3::Hasher::new_keyed(&key.nonce_key);
    h.update(&aad);
    if event_id.is_none() {
        // Never the same input twice: this process's random salt and a count of the nonces
        // it made (a random nonce without a system call per field; 96 bits of a keyed hash of
        // unique inputs collide no more often than 96 random bits).
        h.update(&nonce_salt()[..]);
        h.update(&NONCES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    h.update(&(text.len() as u64).to_le_bytes());
    h.update(text.as_bytes());
    nonce.copy_from_slice(&h.finalize().as_bytes()[..NONCE_LEN]);
    // Encryption of an in-memory buffer of this size cannot fail (the only error is a
    // message longer than the cipher's 64 GiB limit).
    let sealed = key
        .cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: text.as_bytes(),
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    let mut out = String::with_capacity(PREFIX.len() + person.len() + 1 + bytes.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    out.push_str(person);
    out.push('$');
    if event_id.is_none() {
        out.push(NO_ID);
    }
    B64.encode_string(&bytes, &mut out);
    out
}

/// The person a sealed value names, `None` if `value` is not sealed.
pub fn owner(value: &str) -> Option<&str> {
    let rest = value.strip_prefix(PREFIX)?;
    rest.split_once('$').map(|(person, _)| person)
}

/// Why a sealed value did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Not in the sealed form (or its base64 is damaged).
    Malformed,
    /// The tag does not verify: another key, another event or field, or changed bytes.
    Forged,
}

/// The text of a sealed value (`person` is what [`owner`] found in it).
pub fn open(
    key: &PersonKey,
    event_id: &uuid::Uuid,
    field: &str,
    value: &str,
) -> Result<String, OpenError> {
    let rest = value.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
    let (person, b64) = rest.split_once('$').ok_or(OpenError::Malformed)?;
    let (event_id, b64) = match b64.strip_prefix(NO_ID) {
        Some(b64) => (None, b64),
        None => (Some(event_id), b64),
    };
    let mut bytes = B64.decode(b64).map_err(|_| OpenError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    let nonce = *Nonce::from_slice(&bytes[..NONCE_LEN]);
    // Decrypted in place, behind the nonce (one buffer per field read).
    bytes.drain(..NONCE_LEN);
    let aad = associated(person, event_id, field);
    key.cipher
        .decrypt_in_place(&nonce, &aad, &mut bytes)
        .map_err(|_| OpenError::Forged)?;
    String::from_utf8(bytes).map_err(|_| OpenError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn a_sealed_text_opens_with_its_key_event_and_field_only() {
        let key = PersonKey::generate().unwrap();
        let other = PersonKey::generate().unwrap();
        let s = seal(&key, "customer-C-1", Some(&id(1)), "name", "Zhang Wei");
        assert!(s.starts_with("$dt-sealed-1$customer-C-1$"), "{s}");
        assert!(!s.contains("Zhang"));
        assert_eq!(owner(&s), Some("customer-C-1"));
        assert_eq!(open(&key, &id(1), "name", &s).unwrap(), "Zhang Wei");
        assert_eq!(open(&other, &id(1), "name", &s), Err(OpenError::Forged));
        assert_eq!(open(&key, &id(2), "name", &s), Err(OpenError::Forged));
        assert_eq!(open(&key, &id(1), "note", &s), Err(OpenError::Forged));
        // The person in clear is authenticated too: renaming it breaks the tag.
        let moved = s.replace("customer-C-1", "customer-C-2");
        assert_eq!(open(&key, &id(1), "name", &moved), Err(OpenError::Forged));
        assert_eq!(
            open(&key, &id(1), "name", "Zhang"),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn sealing_is_deterministic_per_event_and_text_and_distinct_otherwise() {
        let key = PersonKey::from_bytes([7; 32]);
        let a = seal(&key, "lead-L", Some(&id(1)), "name", "Li");
        assert_eq!(a, seal(&key, "lead-L", Some(&id(1)), "name", "Li"));
        let nonce = |s: &str| {
            let b64 = s.rsplit('$').next().unwrap();
            B64.decode(b64).unwrap()[..NONCE_LEN].to_vec()
        };
        for b in [
            seal(&key, "lead-L", Some(&id(1)), "name", "Lu"),
            seal(&key, "lead-L", Some(&id(2)), "name", "Li"),
            seal(&key, "lead-L", Some(&id(1)), "company", "Li"),
        ] {
            assert_ne!(nonce(&a), nonce(&b));
        }
    }

    #[test]
    fn without_an_id_the_nonce_is_random_and_the_value_opens_with_any_id() {
        let key = PersonKey::generate().unwrap();
        let a = seal(&key, "customer-C", None, "summary", "Zhuge");
        let b = seal(&key, "customer-C", None, "summary", "Zhuge");
        assert_ne!(a, b, "a random nonce each time");
        assert!(a.starts_with("$dt-sealed-1$customer-C$~"), "{a}");
        assert_eq!(owner(&a), Some("customer-C"));
        // Opened with the id the store gave the event later.
        assert_eq!(open(&key, &id(5), "summary", &a).unwrap(), "Zhuge");
        assert_eq!(open(&key, &id(5), "note", &a), Err(OpenError::Forged));
        // The same text, person and field sealed many times: never the same nonce.
        let nonces: std::collections::HashSet<Vec<u8>> = (0..20_000)
            .map(|_| {
                let s = seal(&key, "customer-C", None, "summary", "Zhuge");
                let b64 = s.rsplit_once('~').unwrap().1;
                B64.decode(b64).unwrap()[..NONCE_LEN].to_vec()
            })
            .collect();
        assert_eq!(nonces.len(), 20_000);
    }

    #[test]
    fn empty_and_long_texts_round_trip() {
        let key = PersonKey::generate().unwrap();
        for text in ["", "é", &"x".repeat(10_000)] {
            let s = seal(&key, "customer-C", Some(&id(9)), "summary", text);
            assert_eq!(open(&key, &id(9), "summary", &s).unwrap(), text);
        }
    }
}
