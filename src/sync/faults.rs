//! Why a run could not be applied, as far as the worker must know: a fault of the run's own data
//! or of the service ends the run `failed`; a transient fault of its surroundings (disk full,
//! database busy or locked, I/O error, connection lost) sends it back to the queue to be tried
//! again later; and a run another instance took over is left to that instance.

use std::fmt;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What the worker does with a run whose processing returned an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Outside the run's data: try again later. The text says what happened, for the run's log.
    Transient(&'static str),
    /// The run is no longer this instance's (its lease expired and another instance claimed
    /// it): nothing to record, the other instance finishes it.
    TakenOver,
    /// Anything else: the run ends `failed`.
    Permanent,
}

/// A transient fault raised by the service itself (or injected by a test).
#[derive(Debug)]
pub struct TransientFault(pub &'static str);

impl fmt::Display for TransientFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transient fault: {}", self.0)
    }
}

impl std::error::Error for TransientFault {}

/// Raised inside a run's transaction when the run turns out to be another instance's.
#[derive(Debug)]
pub struct RunTakenOver;

impl fmt::Display for RunTakenOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the run was taken over by another instance after this one's lease expired")
    }
}

impl std::error::Error for RunTakenOver {}

/// Sorts an error by its causes, the first recognised one deciding.
pub fn classify(error: &anyhow::Error) -> Fault {
    for cause in error.chain() {
        if cause.downcast_ref::<RunTakenOver>().is_some() {
            return Fault::TakenOver;
        }
        if let Some(fault) = cause.downcast_ref::<TransientFault>() {
            return Fault::Transient(fault.0);
        }
        if let Some(error) = cause.downcast_ref::<DieselError>() {
            return classify_database_error(error);
        }
        if cause.downcast_ref::<diesel::r2d2::PoolError>().is_some()
            || cause.downcast_ref::<diesel::ConnectionError>().is_some()
        {
            return Fault::Transient("the database could not be reached");
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Fault::Transient("an I/O error occurred");
        }
    }
    Fault::Permanent
}

/// Diesel's error kinds, then the messages of SQLite and PostgreSQL for what has no kind.
pub fn classify_database_error(error: &DieselError) -> Fault {
    match error {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                Fault::Transient("the database connection was lost")
            }
            DatabaseErrorKind::SerializationFailure => {
                Fault::Transient("the database was busy (a conflicting transaction)")
            }
            DatabaseErrorKind::ReadOnlyTransaction => {
                Fault::Transient("the database was read-only")
            }
            _ => classify_message(info.message()),
        },
        DieselError::BrokenTransactionManager => {
            Fault::Transient("the database connection was lost")
        }
        _ => Fault::Permanent,
    }
}

/// Messages of faults outside the run's data, lowercased: SQLite's result codes (SQLITE_BUSY,
/// SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY) and PostgreSQL's (53100
/// disk_full, 53300 too_many_connections, 57P01 admin_shutdown, 40P01 deadlock_detected…).
const TRANSIENT_MESSAGES: &[(&str, &str)] = &[
    ("database is locked", "the database was busy"),
    ("database table is locked", "the database was busy"),
    ("database is busy", "the database was busy"),
    ("deadlock detected", "the database was busy (a deadlock)"),
    ("could not obtain lock", "the database was busy"),
    ("lock timeout", "the database was busy"),
    ("database or disk is full", "the disk was full"),
    ("no space left on device", "the disk was full"),
    ("could not extend file", "the disk was full"),
    ("disk i/o error", "an I/O error occurred"),
    ("could not write", "an I/O error occurred"),
    ("could not read", "an I/O error occurred"),
    (
        "attempt to write a readonly database",
        "the database was read-only",
    ),
    ("read-only transaction", "the database was read-only"),
    (
        "too many connections",
        "the database had no free connection",
    ),
    ("terminating connection", "the database connection was lost"),
    (
        "server closed the connection",
        "the database connection was lost",
    ),
    ("connection reset", "the database connection was lost"),
    ("the database system is", "the database was restarting"),
];

fn classify_message(message: &str) -> Fault {
    let message = message.to_lowercase();
    TRANSIENT_MESSAGES
        .iter()
        .find(|(pattern, _)| message.contains(pattern))
        .map_or(Fault::Permanent, |(_, cause)| Fault::Transient(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> anyhow::Error {
        anyhow::Error::new(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn a_busy_full_or_unreachable_database_is_transient() {
        for (kind, message) in [
            (DatabaseErrorKind::Unknown, "database is locked"),
            (DatabaseErrorKind::Unknown, "database or disk is full"),
            (DatabaseErrorKind::Unknown, "disk I/O error"),
            (
                DatabaseErrorKind::Unknown,
                "could not extend file \"base/16384/16402\": No space left on device",
            ),
            (
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            (
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access",
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
        ] {
            let error = database_error(kind, message).context("applying the run");
            assert!(
                matches!(classify(&error), Fault::Transient(_)),
                "{message} is transient"
            );
        }
    }

    #[test]
    fn faults_of_the_data_or_the_code_are_permanent() {
        for (kind, message) in [
            (DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            (
                DatabaseErrorKind::ForeignKeyViolation,
                "violates foreign key",
            ),
            (DatabaseErrorKind::Unknown, "no such table: sync_events"),
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
        ] {
            assert_eq!(classify(&database_error(kind, message)), Fault::Permanent);
        }
        assert_eq!(classify(&anyhow::anyhow!("panic")), Fault::Permanent);
        assert_eq!(
            classify(&anyhow::Error::new(DieselError::NotFound)),
            Fault::Permanent
        );
    }

    #[test]
    fn the_services_own_markers_are_recognised_through_context() {
        let injected = anyhow::Error::new(TransientFault("the database was busy")).context("x");
        assert_eq!(
            classify(&injected),
            Fault::Transient("the database was busy")
        );
        let lost = anyhow::Error::new(RunTakenOver).context("writing the run");
        assert_eq!(classify(&lost), Fault::TakenOver);
    }
}
