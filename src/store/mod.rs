//! Storage: one Diesel code path for SQLite and PostgreSQL.
//!
//! The backend is chosen explicitly from the URL scheme; SQLite connections get their pragmas
//! when they are opened; migrations live in `migrations/sqlite` and `migrations/postgres` under the
//! same names. Queries are written once against [`DbConn`]; the few statements the portable
//! backend cannot express (multi-row inserts) match on the backend.

pub mod columns;
pub mod deferred_indexes;
pub mod events;
pub mod faults;
pub mod limit;
pub mod models;
pub mod organizations;
pub mod payloads;
pub mod probe;
pub mod runs;
pub mod schema;
pub mod settings;
pub mod teams;
pub mod tokens;
pub mod users;

mod on_backend;
mod pool;
pub mod sqlite_file;
mod static_insert;

pub use pool::{
    advisory_transaction_lock, analyze, begin_bulk_transaction, begin_bulk_write, checkpoint,
    connect, connect_with, count_unchecked_missing_managers, durable_write_transaction,
    end_bulk_write, migrate, pending_migrations, refresh_statistics_after_first_batch,
    size_page_cache_for_writes, write_transaction, Backend, DbConn, DbPool, MultiBackend,
    PoolError, PoolOptions, BOOTSTRAP_LOCK, SQLITE_BUSY_TIMEOUT_MS,
};

use chrono::{DateTime, SecondsFormat, Utc};

/// A timestamp as stored: RFC 3339 in UTC with microseconds and `Z`. Fixed width, so text order
/// is time order.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The current time, stored form.
pub fn now() -> String {
    timestamp(Utc::now())
}

/// A new time-ordered id (UUIDv7): inserts stay at the end of indexes and ids sort by age.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True for a unique-constraint violation on either backend.
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
