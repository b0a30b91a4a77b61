//! The run worker: a thread of the server that takes pending runs from the queue, one at a
//! time per organization, in arrival order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::TestHooks;
use crate::domain::LogLevel;
use crate::store::runs::{self, log_line};
use crate::store::{checkpoint, DbPool};
use crate::sync::engine::process_run;
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

pub struct Worker {
    sender: mpsc::Sender<Signal>,
    thread: Option<JoinHandle<()>>,
    /// Set on stop: the run in progress finishes, the queue waits for the next start.
    stopping: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the worker thread. It also polls every `poll_interval`, for runs queued by other
    /// instances sharing the database.
    pub fn start(
        pool: DbPool,
        poll_interval: Duration,
        hooks: TestHooks,
    ) -> std::io::Result<Worker> {
        let (sender, receiver) = mpsc::channel();
        let checkpoints = start_checkpointer(pool.clone())?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_requested = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("run-worker".into())
            .spawn(move || loop {
                expire_waiting_runs(&pool);
                drain_queue(&pool, &hooks, &checkpoints, &stop_requested);
                match receiver.recv_timeout(poll_interval) {
                    Ok(Signal::Wake) | Err(RecvTimeoutError::Timeout) => continue,
                    Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => break,
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

/// A thread that folds the WAL back into the database after each run, so that neither the
/// next run nor the next push pays for it. It ends with the worker (its sender is dropped).
fn start_checkpointer(pool: DbPool) -> std::io::Result<mpsc::Sender<()>> {
    let (sender, requests) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || {
            while requests.recv().is_ok() {
                while requests.try_recv().is_ok() {}
                let done = pool
                    .get()
                    .map_err(anyhow::Error::from)
                    .and_then(|mut conn| Ok(checkpoint(&mut conn)?));
                if let Err(error) = done {
                    tracing::warn!(%error, "WAL checkpoint failed; SQLite retries at the next commit");
                }
            }
        })?;
    Ok(sender)
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

/// Processes pending runs until none is left.
fn drain_queue(
    pool: &DbPool,
    hooks: &TestHooks,
    checkpoints: &mpsc::Sender<()>,
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
        let run = match runs::claim_next(&mut conn) {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "the run worker cannot read the queue");
                return;
            }
        };
        let span = tracing::info_span!("sync_run", run_id = %run.id, organization_id = %run.organization_id);
        let _entered = span.enter();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process_run(&mut conn, &run, hooks)
        }));
        let _ = checkpoints.send(());
        let failure = match outcome {
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => format!("{error:#}"),
            Err(_) => "panic".to_owned(),
        };
        tracing::error!(%failure, "the run could not be processed");
        // The connection may be mid-transaction: finish the run on a fresh one.
        drop(conn);
        let line = log_line(
            LogLevel::Error,
            "The run failed on an internal error and nothing of it was applied; the cause was logged by the service.".into(),
        );
        let marked = pool
            .get()
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| Ok(lifecycle::fail(&mut conn, &run.id, &[line])?));
        if let Err(error) = marked {
            // The run stays `running`; the next start recovers it.
            tracing::error!(%error, "cannot mark the run failed");
        }
    }
}
