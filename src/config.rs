//! Settings of a running service: flags > environment > defaults (clap resolves the first two).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// How long a request (or the run worker) waits for a free connection before giving up.
    pub pool_timeout: Duration,
    /// PostgreSQL: longest a single statement may run before the server cancels it
    /// (`statement_timeout`); `None` for no limit. SQLite has no such setting.
    pub statement_timeout: Option<Duration>,
    /// Names this process in the runs it claims (`claimed_by`); unique per start by default.
    pub instance_id: String,
    /// How long a claimed run stays this instance's without a heartbeat. The worker renews it
    /// every third of that while it works (PostgreSQL); another instance takes a run over once
    /// its lease has expired.
    pub run_lease: Duration,
    /// Attempts a run gets when transient faults (disk full, database busy, connection lost)
    /// interrupt it, before it ends `failed`.
    pub max_run_attempts: u32,
    /// Wait before the first retry after a transient fault; doubled at each further one.
    pub retry_backoff: Duration,
    /// How much may wait in the queue before pushes are refused with 429.
    pub queue_limits: QueueLimits,
    /// HTTP worker threads; defaults to the number of cores.
    pub http_workers: Option<usize>,
    /// Largest accepted push body, after any decompression.
    pub body_limit_bytes: usize,
    /// Most records a push may carry.
    pub max_records_per_push: usize,
    /// Where push bodies are spooled while they arrive (unnamed files, gone once the push is
    /// stored or refused).
    pub spool_dir: std::path::PathBuf,
    /// Pushes received at the same time; more wait for their turn before their body is read.
    pub max_concurrent_pushes: usize,
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
    /// Fail this many apply attempts (in total, over every run) with a transient fault, as a
    /// busy database would, before letting them through.
    pub transient_faults: TransientFaults,
    /// Plan every run, even a push recognised as unchanged (`sync::unchanged`): the reference
    /// the differential test compares recognised runs with.
    pub plan_every_run: bool,
    /// Build the users' indexes after the inserts from this many new users on, instead of
    /// `store::deferred_indexes::MIN_NEW_USERS`: lets small tests take that path.
    pub defer_user_indexes_from: Option<usize>,
}

/// A countdown of transient faults to inject, shared by every clone of the hooks.
#[derive(Debug, Clone, Default)]
pub struct TransientFaults(Arc<AtomicUsize>);

impl TransientFaults {
    pub fn new(count: usize) -> TransientFaults {
        TransientFaults(Arc::new(AtomicUsize::new(count)))
    }

    /// True (and one fewer left) while faults are left to inject.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    pub fn left(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hris-sync.db";
/// A record of a rich HR export weighs about 360 bytes: 1 GiB holds a full sync of 1,000,000
/// people with room to spare. A body is never held in memory whole, so the limit is about
/// disk and time, not memory.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024 * 1024;
/// A full sync must carry a whole company: 1,000,000 people by default.
pub const DEFAULT_MAX_RECORDS_PER_PUSH: usize = 1_000_000;
/// Each push being received holds about 2.5 MB (its read buffers and the chunk being
/// compressed).
pub const DEFAULT_MAX_CONCURRENT_PUSHES: usize = 16;
pub const DEFAULT_POOL_SIZE: u32 = 8;
pub const DEFAULT_MAX_PENDING_RUNS_PER_ORGANIZATION: u32 = 200;
pub const DEFAULT_MAX_PENDING_RECORDS_PER_ORGANIZATION: u64 = 2_000_000;
pub const DEFAULT_MAX_PENDING_RUNS: u32 = 2_000;
pub const DEFAULT_MAX_PENDING_RECORDS: u64 = 10_000_000;

/// Backpressure: past any of these, a push is refused with 429 and `Retry-After`, and nothing
/// is stored. Records are what a waiting run will cost the worker (memory and time), so they
/// stand for the queue's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub runs_per_organization: u32,
    pub records_per_organization: u64,
    pub runs: u32,
    pub records: u64,
}

impl Default for QueueLimits {
    fn default() -> QueueLimits {
        QueueLimits {
            runs_per_organization: DEFAULT_MAX_PENDING_RUNS_PER_ORGANIZATION,
            records_per_organization: DEFAULT_MAX_PENDING_RECORDS_PER_ORGANIZATION,
            runs: DEFAULT_MAX_PENDING_RUNS,
            records: DEFAULT_MAX_PENDING_RECORDS,
        }
    }
}
pub const DEFAULT_POOL_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_RUN_LEASE_SECS: u64 = 30;
pub const DEFAULT_MAX_RUN_ATTEMPTS: u32 = 5;
pub const DEFAULT_RETRY_BACKOFF_SECS: u64 = 2;

impl Config {
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>) -> Config {
        Config {
            bind: bind.into(),
            database_url: database_url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            pool_timeout: Duration::from_secs(DEFAULT_POOL_TIMEOUT_SECS),
            statement_timeout: None,
            instance_id: new_instance_id(),
            run_lease: Duration::from_secs(DEFAULT_RUN_LEASE_SECS),
            max_run_attempts: DEFAULT_MAX_RUN_ATTEMPTS,
            retry_backoff: Duration::from_secs(DEFAULT_RETRY_BACKOFF_SECS),
            queue_limits: QueueLimits::default(),
            http_workers: None,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            max_records_per_push: DEFAULT_MAX_RECORDS_PER_PUSH,
            spool_dir: std::env::temp_dir(),
            max_concurrent_pushes: DEFAULT_MAX_CONCURRENT_PUSHES,
            worker_poll_interval: Duration::from_secs(2),
            token_cache_ttl: Duration::from_secs(10),
            token_use_flush_interval: Duration::from_secs(15),
            announce_bootstrap_token: true,
            test_hooks: TestHooks::default(),
        }
    }
}

/// `host-pid-random`: readable in a run's log, unique per start.
pub fn new_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hris-sync".to_owned());
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &random[random.len() - 6..]
    )
}

/// Tuning of the database and of the run queue: `hris-sync serve` flags and their environment
/// variables.
#[derive(Debug, Clone, clap::Args)]
pub struct TuningArgs {
    /// Database connections kept by the pool.
    #[arg(long, env = "HRIS_SYNC_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE, global = true)]
    pub pool_size: u32,
    /// Seconds a request waits for a free database connection.
    #[arg(long, env = "HRIS_SYNC_POOL_TIMEOUT", default_value_t = DEFAULT_POOL_TIMEOUT_SECS, global = true)]
    pub pool_timeout: u64,
    /// PostgreSQL: seconds a statement may run before the server cancels it (0: no limit).
    #[arg(
        long,
        env = "HRIS_SYNC_STATEMENT_TIMEOUT",
        default_value_t = 0,
        global = true
    )]
    pub statement_timeout: u64,
    /// Seconds a claimed run stays this instance's without a heartbeat; then another instance
    /// takes it over.
    #[arg(long, env = "HRIS_SYNC_RUN_LEASE", default_value_t = DEFAULT_RUN_LEASE_SECS, global = true)]
    pub run_lease: u64,
    /// Attempts a run gets against transient faults before it ends failed.
    #[arg(long, env = "HRIS_SYNC_MAX_RUN_ATTEMPTS", default_value_t = DEFAULT_MAX_RUN_ATTEMPTS, global = true)]
    pub max_run_attempts: u32,
    /// Seconds before the first retry after a transient fault (doubled at each further one).
    #[arg(long, env = "HRIS_SYNC_RETRY_BACKOFF", default_value_t = DEFAULT_RETRY_BACKOFF_SECS, global = true)]
    pub retry_backoff: u64,
    /// Pending runs one organization may have before its pushes get 429.
    #[arg(long, env = "HRIS_SYNC_MAX_PENDING_RUNS_PER_ORG", default_value_t = DEFAULT_MAX_PENDING_RUNS_PER_ORGANIZATION, global = true)]
    pub max_pending_runs_per_org: u32,
    /// Records in one organization's pending runs before its pushes get 429.
    #[arg(long, env = "HRIS_SYNC_MAX_PENDING_RECORDS_PER_ORG", default_value_t = DEFAULT_MAX_PENDING_RECORDS_PER_ORGANIZATION, global = true)]
    pub max_pending_records_per_org: u64,
    /// Pending runs of all organizations before every push gets 429.
    #[arg(long, env = "HRIS_SYNC_MAX_PENDING_RUNS", default_value_t = DEFAULT_MAX_PENDING_RUNS, global = true)]
    pub max_pending_runs: u32,
    /// Records in all pending runs before every push gets 429.
    #[arg(long, env = "HRIS_SYNC_MAX_PENDING_RECORDS", default_value_t = DEFAULT_MAX_PENDING_RECORDS, global = true)]
    pub max_pending_records: u64,
    /// Largest push body in bytes, after any gzip decompression; larger ones get 413.
    #[arg(long, env = "HRIS_SYNC_MAX_BODY_BYTES", default_value_t = DEFAULT_BODY_LIMIT_BYTES, global = true)]
    pub max_body_bytes: usize,
    /// Most records one push may carry; more get 422.
    #[arg(long, env = "HRIS_SYNC_MAX_RECORDS_PER_PUSH", default_value_t = DEFAULT_MAX_RECORDS_PER_PUSH, global = true)]
    pub max_records_per_push: usize,
    /// Directory where push bodies are spooled while they arrive (default: the system's
    /// temporary directory). Needs room for the largest pushes received at once, compressed.
    #[arg(long, env = "HRIS_SYNC_SPOOL_DIR", global = true)]
    pub spool_dir: Option<std::path::PathBuf>,
    /// Pushes received at the same time; further ones wait before their body is read.
    #[arg(long, env = "HRIS_SYNC_MAX_CONCURRENT_PUSHES", default_value_t = DEFAULT_MAX_CONCURRENT_PUSHES, global = true)]
    pub max_concurrent_pushes: usize,
    /// Names this instance in the runs it claims (default: host, process id and a random part).
    #[arg(long, env = "HRIS_SYNC_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
}

impl TuningArgs {
    /// The configuration with these settings applied.
    pub fn apply(self, mut config: Config) -> Config {
        config.pool_size = self.pool_size.max(2);
        config.pool_timeout = Duration::from_secs(self.pool_timeout.max(1));
        config.statement_timeout =
            (self.statement_timeout > 0).then(|| Duration::from_secs(self.statement_timeout));
        config.run_lease = Duration::from_secs(self.run_lease.max(1));
        config.max_run_attempts = self.max_run_attempts.max(1);
        config.retry_backoff = Duration::from_secs(self.retry_backoff);
        config.queue_limits = QueueLimits {
            runs_per_organization: self.max_pending_runs_per_org.max(1),
            records_per_organization: self.max_pending_records_per_org.max(1),
            runs: self.max_pending_runs.max(1),
            records: self.max_pending_records.max(1),
        };
        config.body_limit_bytes = self.max_body_bytes.max(1);
        config.max_records_per_push = self.max_records_per_push.max(1);
        if let Some(dir) = self.spool_dir {
            config.spool_dir = dir;
        }
        config.max_concurrent_pushes = self.max_concurrent_pushes.max(1);
        if let Some(id) = self.instance_id.filter(|id| !id.trim().is_empty()) {
            config.instance_id = id;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_faults_count_down_to_zero_and_stay_there() {
        let faults = TransientFaults::new(2);
        let shared = faults.clone();
        assert!(faults.take());
        assert!(shared.take());
        assert!(!faults.take());
        assert!(!shared.take());
        assert_eq!(faults.left(), 0);
    }

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        tuning: TuningArgs,
    }

    fn configured(args: &[&str]) -> Config {
        use clap::Parser;
        let flags = Flags::try_parse_from(std::iter::once("hris-sync").chain(args.iter().copied()))
            .expect("valid flags");
        flags
            .tuning
            .apply(Config::new("127.0.0.1:0", "sqlite://x.db"))
    }

    #[test]
    fn tuning_flags_reach_the_configuration() {
        let config = configured(&[
            "--pool-size",
            "3",
            "--pool-timeout",
            "4",
            "--statement-timeout",
            "7",
            "--run-lease",
            "9",
            "--max-run-attempts",
            "2",
            "--retry-backoff",
            "1",
            "--instance-id",
            "node-a",
            "--max-body-bytes",
            "2048",
            "--max-records-per-push",
            "5",
            "--spool-dir",
            "/var/spool/hris",
            "--max-concurrent-pushes",
            "3",
        ]);
        assert_eq!(config.pool_size, 3);
        assert_eq!(config.pool_timeout, Duration::from_secs(4));
        assert_eq!(config.statement_timeout, Some(Duration::from_secs(7)));
        assert_eq!(config.run_lease, Duration::from_secs(9));
        assert_eq!(config.max_run_attempts, 2);
        assert_eq!(config.retry_backoff, Duration::from_secs(1));
        assert_eq!(config.instance_id, "node-a");
        assert_eq!(config.body_limit_bytes, 2048);
        assert_eq!(config.max_records_per_push, 5);
        assert_eq!(
            config.spool_dir,
            std::path::PathBuf::from("/var/spool/hris")
        );
        assert_eq!(config.max_concurrent_pushes, 3);
    }

    #[test]
    fn without_flags_the_defaults_hold_and_zero_means_no_statement_timeout() {
        let config = configured(&[]);
        assert_eq!(config.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(config.statement_timeout, None);
        assert_eq!(
            config.run_lease,
            Duration::from_secs(DEFAULT_RUN_LEASE_SECS)
        );
        assert_eq!(config.max_run_attempts, DEFAULT_MAX_RUN_ATTEMPTS);
        assert!(!config.instance_id.is_empty());
        assert!(config.max_records_per_push >= 1_000_000);
        assert!(config.body_limit_bytes >= 1_000_000 * 400);
    }

    #[test]
    fn instance_ids_differ_from_start_to_start() {
        assert_ne!(new_instance_id(), new_instance_id());
    }
}
