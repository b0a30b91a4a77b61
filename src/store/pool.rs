use std::time::Duration;

use anyhow::{anyhow, Context};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to either backend. The derive also defines `MultiBackend` in this module.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PoolError = r2d2::PoolError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite writer waits for another writer before giving up. A large run holds the
/// write lock for a second or two.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;

/// 16 KiB pages: measured with the bench, a first sync of 100,000 users takes ~2.4 s
/// instead of ~3.0 s with SQLite's default 4 KiB.
const SQLITE_PAGE_SIZE: u32 = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `postgres://` and `postgresql://` are PostgreSQL; `sqlite://`, `file:` and bare paths are
    /// SQLite; any other scheme is refused rather than guessed.
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite://") || url.starts_with("file:") || !url.contains("://") {
            Ok(Backend::Sqlite)
        } else {
            Err(anyhow!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            ))
        }
    }
}

/// How the pool is sized and how long things may wait.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub size: u32,
    /// Longest wait for a free connection.
    pub timeout: Duration,
    /// PostgreSQL `statement_timeout` of every connection; `None` for none.
    pub statement_timeout: Option<Duration>,
}

impl PoolOptions {
    pub fn sized(size: u32) -> PoolOptions {
        PoolOptions {
            size,
            timeout: Duration::from_secs(10),
            statement_timeout: None,
        }
    }
}

/// Opens connections of the backend named by the URL, SQLite ones with their pragmas set.
#[derive(Debug)]
pub struct ConnectionManager {
    url: String,
    backend: Backend,
    statement_timeout: Option<Duration>,
}

impl ConnectionManager {
    pub fn new(url: &str) -> anyhow::Result<ConnectionManager> {
        Ok(ConnectionManager {
            url: url.to_owned(),
            backend: Backend::from_url(url)?,
            statement_timeout: None,
        })
    }

    fn open(&self) -> Result<DbConn, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.url)?;
                if let Some(timeout) = self.statement_timeout {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {};",
                        timeout.as_millis().max(1)
                    ))?;
                }
                Ok(DbConn::Postgres(conn))
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url)?;
                // busy_timeout first: the journal-mode switch itself may wait for a lock.
                conn.batch_execute(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"))?;
                // Only takes effect on a new, empty file (before WAL): larger pages mean
                // shallower B-trees and fewer page splits for a run's bulk inserts.
                conn.batch_execute(&format!("PRAGMA page_size = {SQLITE_PAGE_SIZE};"))?;
                conn.batch_execute("PRAGMA journal_mode = WAL;")?;
                conn.batch_execute("PRAGMA synchronous = NORMAL;")?;
                conn.batch_execute("PRAGMA foreign_keys = ON;")?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.open()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Builds a pool of `size` connections and migrates the database. Fails fast when the
/// database cannot be reached.
pub fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
    connect_with(url, &PoolOptions::sized(size))
}

/// [`connect`] with every pool option.
pub fn connect_with(url: &str, options: &PoolOptions) -> anyhow::Result<DbPool> {
    let mut manager = ConnectionManager::new(url)?;
    manager.statement_timeout = options.statement_timeout;
    super::sqlite_file::check_writable(url)?;
    let pool = r2d2::Pool::builder()
        .max_size(options.size)
        .min_idle(Some(1))
        // No `SELECT 1` before every checkout: a connection that broke is noticed when it is
        // returned (`has_broken`), and the request that met it fails once, as a transient
        // fault (503 with Retry-After).
        .test_on_check_out(false)
        .connection_timeout(options.timeout)
        .build(manager)
        .with_context(|| format!("cannot open the database {}", redact(url)))?;
    let mut conn = pool.get().context("cannot get a database connection")?;
    migrate(&mut conn)?;
    Ok(pool)
}

/// Keys of PostgreSQL advisory locks: one process at a time migrates, or creates the first
/// organization. (Arbitrary constants, unique to this service.)
pub const MIGRATION_LOCK: i64 = 0x6872_6973_0001;
pub const BOOTSTRAP_LOCK: i64 = 0x6872_6973_0002;

/// Applies the pending migrations of the connection's backend. On PostgreSQL, instances
/// starting together take turns (an advisory lock), so that only one applies them.
pub fn migrate(conn: &mut DbConn) -> anyhow::Result<()> {
    let result = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK});"))?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK});"))?;
            result
        }
    };
    result.map_err(|error| anyhow!("cannot migrate the database: {error}"))
}

/// PostgreSQL: waits for the transaction-scoped advisory lock `key` (released at commit or
/// rollback). SQLite: nothing to do, a write transaction already excludes other writers.
pub fn advisory_transaction_lock(conn: &mut DbConn, key: i64) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => c.batch_execute(&format!("SELECT pg_advisory_xact_lock({key});")),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// How many migrations the database still lacks (0 when it is ready).
pub fn pending_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let result = match conn {
        DbConn::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|m| m.len()),
        DbConn::Postgres(c) => c.pending_migrations(POSTGRES_MIGRATIONS).map(|m| m.len()),
    };
    result.map_err(|error| anyhow!("cannot read the migration state: {error}"))
}

/// Runs `work` in a transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`, so
/// that it waits for the write lock up front instead of failing half-way with "database is
/// locked" when another writer got in between its reads and its writes.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let DbConn::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(conn) {
        Ok(value) => {
            <DbConn as TransactionManager<DbConn>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The work's error is the one worth reporting; a failed rollback marks the
            // connection broken and the pool drops it.
            let _ = <DbConn as TransactionManager<DbConn>>::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// A [`write_transaction`] that is on disk when it returns, even if the machine loses power
/// right after: what a 202 promises. SQLite in WAL mode with `synchronous = NORMAL` (the
/// connection default, enough for everything else) only syncs the WAL at checkpoints; this
/// transaction's commit syncs it. PostgreSQL commits are durable already.
pub fn durable_write_transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    set_sqlite_synchronous(conn, "FULL")?;
    let result = write_transaction(conn, work);
    set_sqlite_synchronous(conn, "NORMAL")?;
    result
}

fn set_sqlite_synchronous(conn: &mut DbConn, level: &str) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => c.batch_execute(&format!("PRAGMA synchronous = {level};")),
        DbConn::Postgres(_) => Ok(()),
    }
}

/// SQLite page cache while a run applies: [`BULK_CACHE_BYTES_PER_RECORD`] per record of the
/// run, between these bounds (KiB). A run writes far more pages than SQLite's default cache
/// (2 MB) holds; spilling them to the WAL mid-transaction and reading them back costs more
/// than the memory, and once the indexes a run inserts into outgrow the cache, every insert
/// reads pages back (a 1,000,000-user first sync took 41 s with 32 MB, 29 s with 224 MB).
const BULK_CACHE_MIN_KIB: u64 = 32 * 1024;
const BULK_CACHE_MAX_KIB: u64 = 224 * 1024;
const BULK_CACHE_BYTES_PER_RECORD: u64 = 224;
const DEFAULT_CACHE_KIB: u32 = 2_000;

/// Prepares a connection for a run's large transaction. SQLite: no automatic checkpoint
/// inside the commit, and no foreign-key check per inserted row: each looked the manager up in
/// the table, from its root, once per user (~0.2 s of a 100,000-user first sync); the run
/// checks its managers in one statement before it commits instead
/// ([`count_unchecked_missing_managers`]), and the other keys a run writes are its
/// own organization and run. PostgreSQL: nothing to do (its checks stay).
pub fn begin_bulk_write(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        // foreign_keys is a no-op inside a transaction: this runs before the run's begins.
        DbConn::Sqlite(c) => {
            c.batch_execute("PRAGMA wal_autocheckpoint = 0; PRAGMA foreign_keys = OFF;")
        }
        DbConn::Postgres(_) => Ok(()),
    }
}

/// SQLite: sizes the page cache for a run of `records` records that is about to write (see
/// [`BULK_CACHE_BYTES_PER_RECORD`]). Called once the directory is read, so that the pages of
/// that read do not stay cached: an unchanged re-push of 150,000 people writes almost nothing
/// and kept ~33 MB of them. PostgreSQL: nothing to do.
pub fn size_page_cache_for_writes(conn: &mut DbConn, records: usize) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            let cache_kib = (records as u64 * BULK_CACHE_BYTES_PER_RECORD / 1024)
                .clamp(BULK_CACHE_MIN_KIB, BULK_CACHE_MAX_KIB);
            c.batch_execute(&format!("PRAGMA cache_size = -{cache_kib};"))
        }
        DbConn::Postgres(_) => Ok(()),
    }
}

/// Called first inside a run's write transaction. PostgreSQL: no sequential scans until the
/// transaction ends (`SET LOCAL`). The foreign-key checks of the users a run inserts are
/// queries that PostgreSQL plans once per connection and caches; planned while the table is
/// small (a first sync starts empty), a sequential scan looks cheapest and is then repeated
/// for every one of the run's 100,000 rows as the table grows (see also
/// [`refresh_statistics_after_first_batch`]). SQLite: nothing to do.
pub fn begin_bulk_transaction(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => c.batch_execute("SET LOCAL enable_seqscan = off;"),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// Below this many rows in the planner's statistics, a run's transaction analyses `users`
/// itself once it has written its first batch of new users.
const SMALL_TABLE_ROWS: f32 = 10_000.0;

/// PostgreSQL, inside a run's transaction, after its first batch of new users: if the
/// planner's statistics say `users` is (nearly) empty — a first sync on a fresh database, or a
/// retry after autovacuum cleaned up an aborted one — runs `ANALYZE users` right there.
/// PostgreSQL checks the manager foreign key row by row with a cached plan of `WHERE
/// organization_id = $1 AND id = $2`; on a table believed empty every index that starts with,
/// or contains, `organization_id` costs the same, and it picked `users_by_email` with `id` as
/// a filter: a scan of the whole organization per inserted user, and 503 s for a first sync of
/// 100,000 users. ANALYZE inside the transaction counts the transaction's own new rows, and
/// keeps other ANALYZEs (autovacuum's) from resetting the statistics until the commit. (So a
/// second run doing the same on another instance waits for this one's commit: only while the
/// table is small, i.e. on a new database.) SQLite: nothing to do.
pub fn refresh_statistics_after_first_batch(conn: &mut DbConn) -> diesel::QueryResult<()> {
    use diesel::sql_types::Float;
    #[derive(diesel::QueryableByName)]
    struct Estimate {
        #[diesel(sql_type = Float)]
        reltuples: f32,
    }
    let DbConn::Postgres(c) = conn else {
        return Ok(());
    };
    let estimate: Estimate = diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass"),
        c,
    )?;
    if estimate.reltuples < SMALL_TABLE_ROWS {
        c.batch_execute("ANALYZE users;")?;
    }
    Ok(())
}

/// Inside a run's transaction, before it commits: the users of the organization whose manager
/// does not exist, which [`begin_bulk_write`] let SQLite insert without checking each row.
/// PostgreSQL checked every row itself: 0 without a query.
pub fn count_unchecked_missing_managers(
    conn: &mut DbConn,
    organization_id: &str,
) -> diesel::QueryResult<i64> {
    match conn {
        DbConn::Sqlite(_) => crate::store::users::count_missing_managers(conn, organization_id),
        DbConn::Postgres(_) => Ok(0),
    }
}

/// Undoes [`begin_bulk_write`] once the run is committed (and visible). The WAL the run
/// grew is folded back by [`checkpoint`], off the run worker's path.
pub fn end_bulk_write(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            // First: the connection goes back to the pool, and other writes check their keys.
            c.batch_execute("PRAGMA foreign_keys = ON;")?;
            c.batch_execute(&format!("PRAGMA cache_size = -{DEFAULT_CACHE_KIB};"))?;
            c.batch_execute("PRAGMA wal_autocheckpoint = 1000;")
        }
        DbConn::Postgres(_) => Ok(()),
    }
}

/// SQLite: copies the WAL back into the database file without blocking readers or writers,
/// so that the WAL does not grow from run to run. PostgreSQL: nothing to do.
pub fn checkpoint(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);"),
        DbConn::Postgres(_) => Ok(()),
    }
}

/// PostgreSQL: refreshes the planner's statistics of the tables a large run grows. SQLite:
/// nothing (it keeps no statistics unless asked, and then plans from the indexes alone).
pub fn analyze(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => c.batch_execute("ANALYZE users, teams, sync_events;"),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_comes_from_the_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://hris-sync.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("/var/lib/hris/db.sqlite").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://u@h/db").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/hris"),
            "postgres://app:***@db:5432/hris"
        );
        assert_eq!(redact("sqlite://hris-sync.db"), "sqlite://hris-sync.db");
    }
}
