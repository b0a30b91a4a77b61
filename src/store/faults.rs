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
    /// Another writer held the lock past the busy timeout, a deadlock, a serialization
    /// conflict, or no free connection on the server.
    Busy,
    /// The connection to the database was lost, or the server is restarting.
    ConnectionLost,
    /// An I/O error reading or writing the database.
    Io,
    /// A statement ran past the statement timeout: the store is healthy, the work too big for
    /// it (a request may be retried; a run would time out again).
    StatementTimeout,
    /// Not a fault of the store: the statement or the data is at fault.
    NotTransient,
}

impl StoreFault {
    /// Faults that may be gone on the next attempt.
    pub fn is_transient(self) -> bool {
        !matches!(self, StoreFault::NotTransient)
    }

    /// What happened, as a run's log says it.
    pub fn describe(self) -> &'static str {
        match self {
            StoreFault::StorageFull => "the disk was full",
            StoreFault::ReadOnly => "the database was read-only",
            StoreFault::Busy => "the database was busy",
            StoreFault::ConnectionLost => "the database connection was lost",
            StoreFault::Io => "an I/O error occurred",
            StoreFault::StatementTimeout => "a statement ran past the statement timeout",
            StoreFault::NotTransient => "an error of the request or the service",
        }
    }
}

/// Classifies a Diesel error by its kind and the database's own message.
pub fn classify(error: &Error) -> StoreFault {
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => StoreFault::ConnectionLost,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => StoreFault::Busy,
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

/// The messages of SQLite's result codes (SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL,
/// SQLITE_IOERR, SQLITE_READONLY) and of PostgreSQL's (53100 disk_full, 53300
/// too_many_connections, 57P01 admin_shutdown, 40P01 deadlock_detected, 57014
/// statement timeout…), lowercased, for the errors that have no kind of their own.
const MESSAGES: &[(&str, StoreFault)] = &[
    ("database or disk is full", StoreFault::StorageFull),
    ("no space left on device", StoreFault::StorageFull),
    ("could not extend file", StoreFault::StorageFull),
    ("readonly database", StoreFault::ReadOnly),
    ("read-only transaction", StoreFault::ReadOnly),
    ("database is locked", StoreFault::Busy),
    ("database table is locked", StoreFault::Busy),
    ("database is busy", StoreFault::Busy),
    ("deadlock detected", StoreFault::Busy),
    ("could not obtain lock", StoreFault::Busy),
    ("lock timeout", StoreFault::Busy),
    ("could not serialize access", StoreFault::Busy),
    ("too many connections", StoreFault::Busy),
    (
        "canceling statement due to statement timeout",
        StoreFault::StatementTimeout,
    ),
    ("disk i/o error", StoreFault::Io),
    ("could not write", StoreFault::Io),
    ("could not read", StoreFault::Io),
    ("server closed the connection", StoreFault::ConnectionLost),
    ("terminating connection", StoreFault::ConnectionLost),
    ("connection refused", StoreFault::ConnectionLost),
    ("connection reset", StoreFault::ConnectionLost),
    ("no connection to the server", StoreFault::ConnectionLost),
    ("the database system is", StoreFault::ConnectionLost),
];

fn classify_message(message: &str) -> StoreFault {
    let message = message.to_lowercase();
    MESSAGES
        .iter()
        .find(|(pattern, _)| message.contains(pattern))
        .map_or(StoreFault::NotTransient, |(_, fault)| *fault)
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
