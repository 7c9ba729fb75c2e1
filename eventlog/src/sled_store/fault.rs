//! How the sled store names what went wrong below it. Storage errors become typed
//! [`StoreError`]s: a full disk is [`StoreError::StorageFull`] (from the I/O error's kind or
//! its OS code, including sled's I/O errors, which keep their kind), damage is
//! [`StoreError::Corrupt`] with the position concerned (sled's own checksum failures too).
//! sled 0.34 panics on some damaged data (e.g. "tried to serialize Uninitialized" when its
//! log was damaged before it wrote its first snapshot): [`no_panic`] turns such a panic into
//! `Corrupt` where the store calls into sled on data it has not checked yet.
//!
//! A write or sync that failed leaves a [`Fault`]: appends are refused with its error until
//! the writer has recovered (see `writer`).

use std::fmt::Display;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::StoreError;

pub(crate) fn backend(e: impl Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether an I/O error says the disk is full (`ENOSPC`).
pub(crate) fn is_storage_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
}

/// An I/O error of the store's own files, `context` saying what was being done.
pub(crate) fn io_error(context: &str, e: io::Error) -> StoreError {
    if is_storage_full(&e) {
        StoreError::StorageFull(format!("{context}: {e}"))
    } else {
        StoreError::Backend(format!("{context}: {e}"))
    }
}

/// A sled error met while working on `position` (0: none in particular).
pub(crate) fn sled_error(e: sled::Error, position: u64) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            position,
            reason: match at {
                Some(at) => format!("the storage engine found damaged data in its files ({at:?})"),
                None => "the storage engine found damaged data in its files".into(),
            },
        },
        sled::Error::Io(e) => io_error("the storage engine's I/O failed", e),
        e => backend(e),
    }
}

/// `sled_error` for a `map_err`.
pub(crate) fn at(position: u64) -> impl Fn(sled::Error) -> StoreError {
    move |e| sled_error(e, position)
}

/// Runs `f`, turning a panic (sled's, on damaged data) into `Corrupt` at `position`.
pub(crate) fn no_panic<T>(
    position: u64,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    no_panic_at(|| position, f)
}

/// [`no_panic`], the position known only once `f` has panicked.
pub(crate) fn no_panic_at<T>(
    position: impl FnOnce() -> u64,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(StoreError::Corrupt {
            position: position(),
            reason: format!(
                "the storage engine failed on its files, which are likely damaged ({message})"
            ),
        })
    })
}

/// Why the store refuses appends until the writer has recovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The disk is full.
    Full(String),
    /// Another write or sync failure.
    Io(String),
}

impl Fault {
    pub(crate) fn of(e: &StoreError) -> Fault {
        match e {
            StoreError::StorageFull(d) => Fault::Full(d.clone()),
            e => Fault::Io(e.to_string()),
        }
    }

    /// The error an append gets while the fault stands.
    pub(crate) fn error(&self) -> StoreError {
        match self {
            Fault::Full(d) => StoreError::StorageFull(d.clone()),
            Fault::Io(d) => StoreError::Backend(format!(
                "the store refuses appends after a failed write ({d}); it retries by itself"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_known_by_kind_or_os_code_also_through_sled() {
        let by_code = io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        assert!(is_storage_full(&by_code));
        let by_kind = io::Error::new(io::ErrorKind::StorageFull, "no room");
        assert!(matches!(
            sled_error(sled::Error::Io(by_kind), 7),
            StoreError::StorageFull(_)
        ));
        let other = io::Error::other("No space left on device");
        assert!(matches!(io_error("x", other), StoreError::Backend(_)));
    }

    #[test]
    fn sled_damage_and_panics_are_corrupt_at_the_position() {
        let e = sled_error(sled::Error::Corruption { at: None, bt: () }, 12);
        assert!(matches!(e, StoreError::Corrupt { position: 12, .. }), "{e}");
        let e = no_panic::<()>(3, || panic!("tried to serialize Uninitialized")).unwrap_err();
        match e {
            StoreError::Corrupt { position, reason } => {
                assert_eq!(position, 3);
                assert!(reason.contains("Uninitialized"), "{reason}");
            }
            e => panic!("{e}"),
        }
    }
}
