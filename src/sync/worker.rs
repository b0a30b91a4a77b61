//! The run worker: a thread of the server that takes runs from the queue (see
//! [`runs::claim_next`] for the order: one at a time per organization, in arrival order,
//! organizations taking turns), renews its lease on the run it processes, takes over runs of
//! instances that died, and sends runs that a transient fault stopped back to the queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::TestHooks;
use crate::domain::{LogLevel, RunStatus};
use crate::store::runs::{self, log_line, Claimant};
use crate::store::{analyze, checkpoint, DbConn, DbPool};
use crate::sync::engine::process_run;
use crate::sync::faults::{classify, Fault};
use crate::sync::grace;
use crate::sync::lifecycle;

enum Signal {
    /// A push was stored: look at the queue now.
    Wake,
    Stop,
}

/// Wakes the worker; cheap to clone into every request handler.
#[derive(Clone)]
pub struct WorkerWaker(mpsc::Sender<Signal>);

impl WorkerWaker {
    pub fn wake(&self) {
        // A stopped worker has nothing left to wake; the run stays queued for the next start.
        let _ = self.0.send(Signal::Wake);
    }
}

/// How the worker takes and retries runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often it looks for runs that other instances queued, or whose backoff ended.
    pub poll_interval: Duration,
    /// This instance, and the lease it takes on the runs it claims.
    pub claimant: Claimant,
    /// Attempts a run gets against transient faults.
    pub max_run_attempts: u32,
    /// Wait before the first retry after a transient fault (doubled at each further one).
    pub retry_backoff: Duration,
    pub hooks: TestHooks,
    /// Counts the runs finished as unchanged without their records being read (`/metrics`).
    pub recognised_unchanged: prometheus::IntCounter,
}

pub struct Worker {
    sender: mpsc::Sender<Signal>,
    thread: Option<JoinHandle<()>>,
    /// Set on stop: the run in progress finishes, the queue waits for the next start.
    stopping: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the worker thread. It also polls every `poll_interval`, for runs queued by other
    /// instances sharing the database.
    pub fn start(pool: DbPool, settings: WorkerSettings) -> std::io::Result<Worker> {
        let (sender, receiver) = mpsc::channel();
        let checkpoints = start_checkpointer(pool.clone())?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_requested = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("run-worker".into())
            .spawn(move || {
                let mut grace_checked_on = None;
                loop {
                    expire_waiting_runs(&pool);
                    end_expired_grace_periods(&pool, &mut grace_checked_on);
                    drain_queue(&pool, &settings, &checkpoints, &stop_requested);
                    match receiver.recv_timeout(settings.poll_interval) {
                        Ok(Signal::Wake) | Err(RecvTimeoutError::Timeout) => continue,
                        Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Worker {
            sender,
            thread: Some(thread),
            stopping,
        })
    }

    pub fn waker(&self) -> WorkerWaker {
        WorkerWaker(self.sender.clone())
    }

    /// Lets the run in progress finish, then stops the thread.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.sender.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the run worker panicked");
            }
        }
    }
}

/// Records in a run past which PostgreSQL's statistics are refreshed after it: a first sync
/// multiplies a table's size, and until autovacuum notices, the planner reads the new run's
/// report with a plan made for a few hundred rows (a bitmap scan and a sort of the whole run
/// instead of the first page of its index: 100 ms instead of 2 ms).
const ANALYZE_AFTER_RECORDS: i32 = 5_000;

/// A thread for the upkeep after a run, so that neither the next run nor the next request
/// pays for it: SQLite folds the WAL back into the database; PostgreSQL re-analyses the tables
/// after a large run. It ends with the worker (its sender is dropped). The message says
/// whether the run was large.
fn start_checkpointer(pool: DbPool) -> std::io::Result<mpsc::Sender<bool>> {
    let (sender, requests) = mpsc::channel::<bool>();
    std::thread::Builder::new()
        .name("after-run".into())
        .spawn(move || {
            while let Ok(mut large) = requests.recv() {
                while let Ok(next) = requests.try_recv() {
                    large |= next;
                }
                let done = pool.get().map_err(anyhow::Error::from).and_then(|mut conn| {
                    checkpoint(&mut conn)?;
                    if large {
                        analyze(&mut conn)?;
                    }
                    Ok(())
                });
                if let Err(error) = done {
                    tracing::warn!(%error, "the upkeep after a run failed (a WAL checkpoint, or statistics); it is tried again after the next run");
                }
            }
        })?;
    Ok(sender)
}

/// Once a day (UTC), and right after a start: archives the users whose archive grace period
/// ended while no run of their organization came to do it.
fn end_expired_grace_periods(pool: &DbPool, checked_on: &mut Option<chrono::NaiveDate>) {
    let today = chrono::Utc::now().date_naive();
    if *checked_on == Some(today) {
        return;
    }
    let done = pool
        .get()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| Ok(grace::archive_expired_everywhere(&mut conn, today)?));
    match done {
        Ok(expired) => {
            *checked_on = Some(today);
            if expired.archived > 0 {
                tracing::info!(
                    archived = expired.archived,
                    "grace periods ended: users archived"
                );
            }
        }
        Err(error) => tracing::error!(%error, "cannot end the expired archive grace periods"),
    }
}

/// Rejects the runs that waited for approval longer than their organization allows; also
/// right after a start, so that runs that expired while the service was down end at once.
fn expire_waiting_runs(pool: &DbPool) {
    let expired = pool
        .get()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| Ok(lifecycle::expire_waiting(&mut conn)?));
    match expired {
        Ok(ids) => {
            for run_id in ids {
                tracing::warn!(%run_id, "run awaiting approval expired: rejected");
            }
        }
        Err(error) => tracing::error!(%error, "cannot expire runs awaiting approval"),
    }
}

/// Processes runs until none is ready: first takes over runs whose instance died (so that they
/// keep their place at the head of their organization's queue), then claims the next run.
fn drain_queue(
    pool: &DbPool,
    settings: &WorkerSettings,
    checkpoints: &mpsc::Sender<bool>,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::SeqCst) {
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(%error, "the run worker cannot reach the database");
                return;
            }
        };
        match runs::take_over_expired(&mut conn) {
            Ok(taken) => log_take_overs(&taken),
            Err(error) => tracing::error!(%error, "the run worker cannot check the runs' leases"),
        }
        let run = match runs::claim_next(&mut conn, &settings.claimant) {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "the run worker cannot read the queue");
                return;
            }
        };
        let span = tracing::info_span!("sync_run", run_id = %run.id, organization_id = %run.organization_id, attempt = run.attempts);
        let _entered = span.enter();
        // SQLite: the run's transaction holds the only write lock, so a heartbeat could not be
        // written until the run ends; there is one instance, and nothing to take over from.
        let heartbeat = matches!(*conn, DbConn::Postgres(_));
        let outcome = with_heartbeat(pool, &run.id, &settings.claimant, heartbeat, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                process_run(&mut conn, &run, &settings.hooks)
            }))
        });
        let _ = checkpoints.send(run.progress_total >= ANALYZE_AFTER_RECORDS);
        crate::allocator::release_freed_memory();
        let error = match outcome {
            Ok(Ok(processed)) => {
                if processed.recognised_unchanged {
                    settings.recognised_unchanged.inc();
                }
                continue;
            }
            Ok(Err(error)) => error,
            Err(_) => anyhow::anyhow!("the run's processing panicked"),
        };
        // The connection may be mid-transaction or broken: record the outcome on a fresh one.
        drop(conn);
        after_error(pool, settings, &run.id, &error);
    }
}

/// Renews the lease on `run_id` every third of its length while `work` runs.
fn with_heartbeat<T>(
    pool: &DbPool,
    run_id: &str,
    claimant: &Claimant,
    enabled: bool,
    work: impl FnOnce() -> T,
) -> T {
    if !enabled {
        return work();
    }
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let beat = scope.spawn(move || {
            let every = (claimant.lease / 3).max(Duration::from_millis(100));
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let renewed = pool
                    .get()
                    .map_err(anyhow::Error::from)
                    .and_then(|mut conn| Ok(runs::renew_lease(&mut conn, run_id, claimant)?));
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        // Finished a moment ago, or taken over (then the run's own transaction
                        // notices and rolls back).
                        tracing::info!(
                            "the run is no longer held by this instance: heartbeat stops"
                        );
                        return;
                    }
                    Err(error) => tracing::warn!(%error, "cannot renew the run's lease"),
                }
            }
        });
        let value = work();
        drop(stop);
        let _ = beat.join();
        value
    })
}

/// What happens to a run whose processing returned an error: queued again after a transient
/// fault, left alone if another instance took it over, failed otherwise. Recording it is tried
/// a few times, since the fault may be a database that is briefly away.
fn after_error(pool: &DbPool, settings: &WorkerSettings, run_id: &str, error: &anyhow::Error) {
    let fault = classify(error);
    match fault {
        Fault::Transient(cause) => {
            tracing::warn!(error = %format!("{error:#}"), cause, "a transient fault interrupted the run");
        }
        Fault::TakenOver => {
            tracing::warn!(
                "the run was taken over by another instance; its work here was rolled back"
            );
            return;
        }
        Fault::Permanent => {
            tracing::error!(failure = %format!("{error:#}"), "the run could not be processed");
        }
    }
    for attempt in 1..=RECORD_ATTEMPTS {
        let recorded = pool
            .get()
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| record_outcome(&mut conn, settings, run_id, fault));
        match recorded {
            Ok(()) => return,
            Err(error) if attempt == RECORD_ATTEMPTS => {
                // The run stays `running`; its lease expires and it is taken over (or, on
                // SQLite, recovered at the next start).
                tracing::error!(%error, "cannot record the run's outcome");
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "cannot record the run's outcome yet");
                std::thread::sleep(Duration::from_secs(u64::from(attempt)));
            }
        }
    }
}

const RECORD_ATTEMPTS: u32 = 3;

fn record_outcome(
    conn: &mut DbConn,
    settings: &WorkerSettings,
    run_id: &str,
    fault: Fault,
) -> anyhow::Result<()> {
    match fault {
        Fault::Transient(cause) => {
            let status = runs::requeue_after_transient_fault(
                conn,
                run_id,
                &settings.claimant,
                cause,
                settings.retry_backoff,
                settings.max_run_attempts,
            )?;
            if let Some(status) = status {
                tracing::warn!(%status, "the run was set back after a transient fault");
            }
        }
        Fault::TakenOver => {}
        Fault::Permanent => {
            let line = log_line(
                LogLevel::Error,
                "The run failed on an internal error and nothing of it was applied; the cause was logged by the service.".into(),
            );
            runs::fail_claimed(conn, run_id, &settings.claimant, line)?;
        }
    }
    Ok(())
}

fn log_take_overs(taken: &[(String, RunStatus)]) {
    for (run_id, status) in taken {
        match status {
            RunStatus::Pending => {
                tracing::warn!(%run_id, "run taken over after its instance's lease expired: queued again")
            }
            _ => tracing::error!(%run_id, "run interrupted too many times: failed"),
        }
    }
}
