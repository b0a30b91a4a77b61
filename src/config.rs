//! Settings of a running service: flags > environment > defaults (clap resolves the first two).

use std::time::Duration;

/// Everything `startup` needs to build and run the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port`; port 0 picks a free port (tests).
    pub bind: String,
    /// `sqlite://path`, a bare file path, or `postgres://…`.
    pub database_url: String,
    /// Connections kept by the pool.
    pub pool_size: u32,
    /// HTTP worker threads; defaults to the number of cores.
    pub http_workers: Option<usize>,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Most records a push may carry (a 64 MiB body of real records holds about 200,000).
    pub max_records_per_push: usize,
    /// How often the run worker looks for pending runs that another instance queued.
    pub worker_poll_interval: Duration,
    /// How long an authenticated token is trusted without asking the database again: a token
    /// revoked by the command line or on another instance stops working within this time.
    pub token_cache_ttl: Duration,
    /// How often tokens' `last_used_at` is written (batched, off the request path).
    pub token_use_flush_interval: Duration,
    /// Print the bootstrap token to stdout when an empty database gets its first organization.
    pub announce_bootstrap_token: bool,
    /// Faults that tests inject into a real server; always off outside tests.
    pub test_hooks: TestHooks,
}

/// Failures a test can plant to prove that a run is applied all-or-nothing.
#[derive(Debug, Clone, Default)]
pub struct TestHooks {
    /// Fail the apply step after this many directory writes, inside the run's transaction.
    pub fail_apply_after_writes: Option<usize>,
    /// Keep the run's write transaction open this long before committing, to show that reads
    /// do not wait for a run.
    pub hold_run_transaction: Option<Duration>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hris-sync.db";
/// 100,000 records of a rich HR export weigh about 40 MB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_MAX_RECORDS_PER_PUSH: usize = 250_000;

impl Config {
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>) -> Config {
        Config {
            bind: bind.into(),
            database_url: database_url.into(),
            pool_size: 8,
            http_workers: None,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            max_records_per_push: DEFAULT_MAX_RECORDS_PER_PUSH,
            worker_poll_interval: Duration::from_secs(2),
            token_cache_ttl: Duration::from_secs(10),
            token_use_flush_interval: Duration::from_secs(15),
            announce_bootstrap_token: true,
            test_hooks: TestHooks::default(),
        }
    }
}
