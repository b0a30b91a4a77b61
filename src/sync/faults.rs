//! Why a run could not be applied, as far as the worker must know: a fault of the run's own data
//! or of the service ends the run `failed`; a transient fault of its surroundings (disk full,
//! database busy or locked, I/O error, connection lost) sends it back to the queue to be tried
//! again later; and a run another instance took over is left to that instance.

use std::fmt;

use diesel::result::Error as DieselError;

use crate::store::faults::{self, StoreFault};

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

/// A store error, as the worker sees it: the store's faults of the moment (`store::faults`, the
/// one table of them) are tried again; a statement timeout would time out again, and anything
/// else is the run's own or the service's: permanent.
pub fn classify_database_error(error: &DieselError) -> Fault {
    match faults::classify(error) {
        StoreFault::NotTransient | StoreFault::StatementTimeout => Fault::Permanent,
        fault => Fault::Transient(fault.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::DatabaseErrorKind;

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
