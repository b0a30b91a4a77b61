//! What a store error says about the store itself, as opposed to about the request: a full
//! disk, a read-only file, a lock held too long or a lost connection are faults of the moment
//! that a retry may cure; everything else is a bug or a data problem.

use diesel::result::{DatabaseErrorKind, Error};

/// The kind of fault behind a failed store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// No space left for the database (SQLite `SQLITE_FULL`, PostgreSQL `53100`/ENOSPC).
    StorageFull,
    /// The database cannot be written at all (read-only file or file system, a standby).
    ReadOnly,
    /// Another writer held the lock past the busy timeout, or a statement was cancelled.
    Busy,
    /// The connection to the database was lost.
    ConnectionLost,
    /// An I/O error reading or writing the database.
    Io,
    /// Not a fault of the store: the statement or the data is at fault.
    NotTransient,
}

impl StoreFault {
    /// Faults that may be gone on the next attempt.
    pub fn is_transient(self) -> bool {
        !matches!(self, StoreFault::NotTransient)
    }
}

/// Classifies a Diesel error by its kind and the database's own message.
pub fn classify(error: &Error) -> StoreFault {
    match error {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => StoreFault::ConnectionLost,
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => StoreFault::ReadOnly,
        Error::DatabaseError(_, info) => classify_message(info.message()),
        Error::BrokenTransactionManager => StoreFault::ConnectionLost,
        _ => StoreFault::NotTransient,
    }
}

/// Classifies an error chain (anyhow) by its first Diesel error, or by its messages.
pub fn classify_any(error: &anyhow::Error) -> StoreFault {
    for cause in error.chain() {
        if let Some(diesel_error) = cause.downcast_ref::<Error>() {
            return classify(diesel_error);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return if io.raw_os_error() == Some(28) {
                StoreFault::StorageFull
            } else {
                StoreFault::Io
            };
        }
    }
    classify_message(&error.to_string())
}

fn classify_message(message: &str) -> StoreFault {
    let message = message.to_ascii_lowercase();
    let has = |needle: &str| message.contains(needle);
    if has("database or disk is full")
        || has("no space left on device")
        || has("could not extend file")
    {
        StoreFault::StorageFull
    } else if has("readonly database") || has("read-only") || has("read only") {
        StoreFault::ReadOnly
    } else if has("database is locked")
        || has("database table is locked")
        || has("database is busy")
        || has("canceling statement due to statement timeout")
        || has("deadlock detected")
        || has("could not serialize access")
    {
        StoreFault::Busy
    } else if has("disk i/o error") || has("could not write") || has("could not read") {
        StoreFault::Io
    } else if has("server closed the connection")
        || has("terminating connection")
        || has("connection refused")
        || has("no connection to the server")
    {
        StoreFault::ConnectionLost
    } else {
        StoreFault::NotTransient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_messages_are_recognised() {
        assert_eq!(
            classify_message("database or disk is full"),
            StoreFault::StorageFull
        );
        assert_eq!(
            classify_message("could not extend file \"base/1/2\": No space left on device"),
            StoreFault::StorageFull
        );
        assert_eq!(
            classify_message("attempt to write a readonly database"),
            StoreFault::ReadOnly
        );
        assert_eq!(classify_message("database is locked"), StoreFault::Busy);
        assert_eq!(classify_message("disk I/O error"), StoreFault::Io);
        assert_eq!(
            classify_message("UNIQUE constraint failed: users.email_key"),
            StoreFault::NotTransient
        );
        assert!(!StoreFault::NotTransient.is_transient());
        assert!(StoreFault::Busy.is_transient());
    }

    #[test]
    fn an_error_chain_is_classified_by_its_diesel_error() {
        let error = anyhow::Error::new(Error::NotFound).context("loading the run");
        assert_eq!(classify_any(&error), StoreFault::NotTransient);
        let full = anyhow::Error::new(std::io::Error::from_raw_os_error(28)).context("storing");
        assert_eq!(classify_any(&full), StoreFault::StorageFull);
    }
}
