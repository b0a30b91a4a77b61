//! Can the store be written right now? A cheap probe for `/readyz`: an instance whose database
//! cannot take writes must leave the load balancer's rotation, since every push would fail.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use crate::store::{sqlite_file, DbConn};

/// Below this much free space on the SQLite file's disk the instance reports not ready: a run's
/// transaction and its WAL need room, and a push must not be accepted only to fail.
pub const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// Why the store cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotWritable {
    DiskAlmostFull { free_bytes: u64 },
    ReadOnly(String),
    Unreachable(String),
}

impl std::fmt::Display for NotWritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWritable::DiskAlmostFull { free_bytes } => write!(
                f,
                "The database's disk has {} KiB free, under the {} MiB a run needs; free some space.",
                free_bytes / 1024,
                MIN_FREE_BYTES / (1024 * 1024)
            ),
            NotWritable::ReadOnly(why) => write!(f, "The database cannot be written: {why}."),
            NotWritable::Unreachable(why) => write!(f, "The database cannot be read: {why}."),
        }
    }
}

/// Checks that the store can take a write, without writing anything.
/// - SQLite: the file's disk has room, and the write lock can be taken (or is held by a
///   writer at work, which proves the same).
/// - PostgreSQL: the server is a primary and the session is not read-only.
pub fn check_writable(conn: &mut DbConn, database_url: &str) -> Result<(), NotWritable> {
    match conn {
        DbConn::Sqlite(sqlite) => {
            if let Some(directory) = sqlite_file::directory_of(database_url) {
                let free_bytes = fs4::available_space(&directory)
                    .map_err(|error| NotWritable::Unreachable(error.to_string()))?;
                if free_bytes < MIN_FREE_BYTES {
                    return Err(NotWritable::DiskAlmostFull { free_bytes });
                }
            }
            try_write_lock(sqlite)
        }
        DbConn::Postgres(pg) => {
            #[derive(QueryableByName)]
            struct Writable {
                #[diesel(sql_type = Bool)]
                writable: bool,
            }
            let answer: Writable = diesel::sql_query(
                "SELECT (NOT pg_is_in_recovery()) AND current_setting('transaction_read_only') = 'off' AS writable",
            )
            .get_result(pg)
            .map_err(|error| NotWritable::Unreachable(error.to_string()))?;
            if answer.writable {
                Ok(())
            } else {
                Err(NotWritable::ReadOnly(
                    "the server is a standby or the database is read-only".into(),
                ))
            }
        }
    }
}

/// Takes and releases SQLite's write lock without waiting: "locked" means a writer is at work
/// (the file is writable); "readonly" means it is not.
fn try_write_lock(sqlite: &mut diesel::SqliteConnection) -> Result<(), NotWritable> {
    let outcome = sqlite
        .batch_execute("PRAGMA busy_timeout = 0;")
        .and_then(|()| sqlite.batch_execute("BEGIN IMMEDIATE; ROLLBACK;"));
    let restored = sqlite.batch_execute(&format!(
        "PRAGMA busy_timeout = {};",
        crate::store::SQLITE_BUSY_TIMEOUT_MS
    ));
    if let Err(error) = restored {
        return Err(NotWritable::Unreachable(error.to_string()));
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(error) => {
            let message = error.to_string();
            if message.contains("locked") || message.contains("busy") {
                Ok(())
            } else if message.contains("readonly") || message.contains("read-only") {
                Err(NotWritable::ReadOnly(message))
            } else {
                Err(NotWritable::Unreachable(message))
            }
        }
    }
}
