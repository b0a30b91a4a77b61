//! The one place where a run changes status.
//!
//! Every status change is a step of [`TRANSITIONS`]: the table says from which status a step
//! may start and where it leads. Each function here performs one step as a guarded update
//! (`… WHERE id = ? AND status IN (the allowed sources)`), so two instances or two requests
//! racing for the same run cannot both move it: the loser gets [`LifecycleError::Refused`]
//! with the status the run has. Handlers, the engine and the worker call these functions.
//!
//! The queue's own steps — claim (pending → running), requeue after a transient fault or an
//! expired lease (running → pending), give up (running → failed) — are written by
//! `store::runs` (`claim_next`, `requeue_after_transient_fault`, `take_over_expired`,
//! `recover_interrupted`, `fail_claimed`), inside the queue's locks and leases; they are the
//! `Claim`, `Recover`, `GiveUp` and `Fail` rows of the table.

use std::fmt;

use diesel::prelude::*;

use crate::domain::{LogLevel, LogLine, RunStatus, RunSummary};
use crate::store::models::RunRow;
use crate::store::runs::{self, log_line, with_log_lines};
use crate::store::schema::sync_runs;
use crate::store::{now, timestamp, write_transaction, DbConn};
use crate::sync::gate::ApprovalReason;

/// True when nothing of a run's report was applied: it says what the run would do (a dry run,
/// a run awaiting approval, one that was rejected or expired, or an approved run whose
/// application failed — the report of any other failed run is empty).
pub fn report_is_planned(status: RunStatus, dry_run: bool) -> bool {
    dry_run || matches!(status, AwaitingApproval | Rejected | Failed)
}

/// What moves a run from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The worker takes a queued run.
    Claim,
    /// Planning ended with a plan that needs an administrator's approval.
    AwaitApproval,
    /// An administrator approved; the run is re-planned and applied.
    Approve,
    /// An administrator rejected; nothing is applied.
    Reject,
    /// Nobody decided within `approval.expires_after_hours`.
    Expire,
    /// The run was planned and applied (or, dry, only planned).
    Finish,
    /// The run could not be applied; nothing of it was.
    Fail,
    /// A crash interrupted the run: it is queued again…
    Recover,
    /// …unless it already had its attempts.
    GiveUp,
    /// A final run is run again: the step makes a *new* run, which starts `pending`.
    Retry,
}

use RunStatus::{
    Approved, AwaitingApproval, Failed, Pending, Rejected, Running, Succeeded, SucceededWithErrors,
};

/// Every allowed status change: (from, step, to).
pub const TRANSITIONS: &[(RunStatus, Step, RunStatus)] = &[
    (Pending, Step::Claim, Running),
    (Running, Step::Finish, Succeeded),
    (Running, Step::Finish, SucceededWithErrors),
    (Running, Step::Fail, Failed),
    (Running, Step::AwaitApproval, AwaitingApproval),
    (Running, Step::Recover, Pending),
    (Running, Step::GiveUp, Failed),
    (AwaitingApproval, Step::Approve, Approved),
    (AwaitingApproval, Step::Reject, Rejected),
    (AwaitingApproval, Step::Expire, Rejected),
    // An approved run whose application fails (nothing of it is applied).
    (AwaitingApproval, Step::Fail, Failed),
    // Retry leaves the original as it is; its `to` is the status of the new run.
    (Succeeded, Step::Retry, Pending),
    (SucceededWithErrors, Step::Retry, Pending),
    (Failed, Step::Retry, Pending),
    (Approved, Step::Retry, Pending),
    (Rejected, Step::Retry, Pending),
];

/// The statuses `step` may start from to lead to `to`.
pub fn sources(step: Step, to: RunStatus) -> Vec<RunStatus> {
    TRANSITIONS
        .iter()
        .filter(|(_, s, t)| *s == step && *t == to)
        .map(|(from, _, _)| *from)
        .collect()
}

/// Whether `step` may move a run from `from` to `to`.
pub fn allowed(from: RunStatus, step: Step, to: RunStatus) -> bool {
    TRANSITIONS.contains(&(from, step, to))
}

/// Why a step did not happen.
#[derive(Debug)]
pub enum LifecycleError {
    /// The run is in a status the step cannot start from (another request or instance may
    /// have moved it first), or it does not exist (`current` is `None`).
    Refused {
        step: Step,
        current: Option<RunStatus>,
    },
    Store(diesel::result::Error),
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::Refused {
                step,
                current: Some(current),
            } => write!(f, "a {current} run cannot take the step {step:?}"),
            LifecycleError::Refused {
                step,
                current: None,
            } => write!(f, "no such run for the step {step:?}"),
            LifecycleError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for LifecycleError {}

impl From<diesel::result::Error> for LifecycleError {
    fn from(error: diesel::result::Error) -> LifecycleError {
        LifecycleError::Store(error)
    }
}

/// The columns a step writes besides the status; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = sync_runs)]
struct Changes {
    status: Option<RunStatus>,
    started_at: Option<String>,
    finished_at: Option<String>,
    progress_processed: Option<i32>,
    summary: Option<String>,
    logs: Option<String>,
    settings_version: Option<i32>,
    approval_reasons: Option<String>,
    awaiting_since: Option<String>,
    approval_expires_at: Option<String>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    decided_at: Option<String>,
}

/// Performs `step` to `to` on the run, with `changes`, if the run is in one of the step's
/// sources.
fn apply(
    conn: &mut DbConn,
    run_id: &str,
    step: Step,
    to: RunStatus,
    mut changes: Changes,
) -> Result<(), LifecycleError> {
    let from = sources(step, to);
    debug_assert!(!from.is_empty(), "{step:?} never leads to {to}");
    changes.status = Some(to);
    let updated = diesel::update(
        sync_runs::table
            .find(run_id)
            .filter(sync_runs::status.eq_any(from)),
    )
    .set(&changes)
    .execute(conn)?;
    if updated == 1 {
        return Ok(());
    }
    let current: Option<RunStatus> = sync_runs::table
        .find(run_id)
        .select(sync_runs::status)
        .get_result(conn)
        .optional()?;
    Err(LifecycleError::Refused { step, current })
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, LifecycleError> {
    serde_json::to_string(value)
        .map_err(|e| LifecycleError::Store(diesel::result::Error::SerializationError(Box::new(e))))
}

/// What a planned run found and which settings it was planned with.
pub struct Planned<'a> {
    pub summary: &'a RunSummary,
    pub settings_version: i32,
    /// The approval limits the plan crossed (for a dry run: those a real run would have).
    pub approval_reasons: &'a [ApprovalReason],
    pub log: &'a [LogLine],
}

/// Running → succeeded or succeeded_with_errors.
pub fn finish(
    conn: &mut DbConn,
    run_id: &str,
    status: RunStatus,
    planned: &Planned<'_>,
) -> Result<(), LifecycleError> {
    let changes = Changes {
        finished_at: Some(now()),
        progress_processed: Some(progress_total(conn, run_id)?),
        summary: Some(json(planned.summary)?),
        logs: Some(with_log_lines(conn, run_id, planned.log)?),
        settings_version: Some(planned.settings_version),
        approval_reasons: Some(json(&planned.approval_reasons)?),
        ..Changes::default()
    };
    apply(conn, run_id, Step::Finish, status, changes)
}

/// Running → awaiting_approval: the plan is stored as the run's (planned) report, the
/// directory is untouched. The run expires `expires_after_hours` from now.
pub fn await_approval(
    conn: &mut DbConn,
    run_id: &str,
    planned: &Planned<'_>,
    expires_after_hours: f64,
) -> Result<(), LifecycleError> {
    let since = chrono::Utc::now();
    let lifetime = chrono::Duration::milliseconds((expires_after_hours * 3_600_000.0) as i64);
    let changes = Changes {
        progress_processed: Some(progress_total(conn, run_id)?),
        summary: Some(json(planned.summary)?),
        logs: Some(with_log_lines(conn, run_id, planned.log)?),
        settings_version: Some(planned.settings_version),
        approval_reasons: Some(json(&planned.approval_reasons)?),
        awaiting_since: Some(timestamp(since)),
        approval_expires_at: Some(timestamp(since + lifetime)),
        ..Changes::default()
    };
    apply(conn, run_id, Step::AwaitApproval, AwaitingApproval, changes)
}

/// Who decided on a waiting run, and why.
pub struct Decision<'a> {
    /// The deciding token's name.
    pub by: &'a str,
    pub reason: Option<&'a str>,
}

/// Awaiting_approval → approved. Called inside the transaction that then applies the run
/// (and records its report with [`record_approved`]): if applying fails, the transaction is
/// rolled back and the run still awaits, to be failed by [`fail`].
pub fn approve(
    conn: &mut DbConn,
    run_id: &str,
    decision: &Decision<'_>,
) -> Result<(), LifecycleError> {
    let changes = Changes {
        decided_by: Some(decision.by.to_owned()),
        decision_reason: decision.reason.map(str::to_owned),
        decided_at: Some(now()),
        ..Changes::default()
    };
    apply(conn, run_id, Step::Approve, Approved, changes)
}

/// What an approved run applied: its new report's summary, its settings version and log.
/// Not a status change (the run is `approved` already, in the same transaction).
pub fn record_approved(
    conn: &mut DbConn,
    run_id: &str,
    summary: &RunSummary,
    settings_version: i32,
    log: &[LogLine],
) -> Result<(), LifecycleError> {
    let changes = Changes {
        finished_at: Some(now()),
        summary: Some(json(summary)?),
        logs: Some(with_log_lines(conn, run_id, log)?),
        settings_version: Some(settings_version),
        ..Changes::default()
    };
    let updated = diesel::update(
        sync_runs::table
            .find(run_id)
            .filter(sync_runs::status.eq(Approved)),
    )
    .set(&changes)
    .execute(conn)?;
    if updated == 0 {
        return Err(LifecycleError::Refused {
            step: Step::Approve,
            current: None,
        });
    }
    Ok(())
}

/// Awaiting_approval → rejected by an administrator; nothing is applied.
pub fn reject(
    conn: &mut DbConn,
    run_id: &str,
    decision: &Decision<'_>,
) -> Result<(), LifecycleError> {
    write_transaction(conn, |conn| {
        let line = log_line(
            LogLevel::Info,
            format!(
                "Rejected by {}{}; nothing of the run was applied.",
                decision.by,
                decision
                    .reason
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            ),
        );
        let changes = Changes {
            finished_at: Some(now()),
            logs: Some(with_log_lines(conn, run_id, &[line])?),
            decided_by: Some(decision.by.to_owned()),
            decision_reason: decision.reason.map(str::to_owned),
            decided_at: Some(now()),
            ..Changes::default()
        };
        apply(conn, run_id, Step::Reject, Rejected, changes)
    })
}

/// Ends every run awaiting approval whose deadline (`approval_expires_at`, set when it began
/// to wait) has passed. Returns the ids of the runs it rejected.
pub fn expire_waiting(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    let expired_runs: Vec<(String, Option<String>)> = sync_runs::table
        .filter(sync_runs::status.eq(AwaitingApproval))
        .filter(sync_runs::approval_expires_at.le(now()))
        .select((sync_runs::id, sync_runs::approval_expires_at))
        .load(conn)?;
    let mut expired = Vec::new();
    for (run_id, deadline) in expired_runs {
        let line = log_line(
            LogLevel::Warning,
            format!("Nobody approved or rejected the run before its deadline ({}, approval.expires_after_hours after it began to wait): it expired and was rejected, and nothing of it was applied. Retry it with POST /v1/syncs/{run_id}/retry if it is still wanted.", deadline.unwrap_or_default()),
        );
        let result = write_transaction(conn, |conn| {
            let changes = Changes {
                finished_at: Some(now()),
                logs: Some(with_log_lines(conn, &run_id, &[line])?),
                decision_reason: Some("expired".to_owned()),
                decided_at: Some(now()),
                ..Changes::default()
            };
            apply(conn, &run_id, Step::Expire, Rejected, changes)
        });
        match result {
            Ok(()) => expired.push(run_id),
            // Decided meanwhile: nothing to expire.
            Err(LifecycleError::Refused { .. }) => {}
            Err(LifecycleError::Store(error)) => return Err(error),
        }
    }
    Ok(expired)
}

/// Running (or awaiting an approval whose application failed) → failed, with the reason in
/// the log. Nothing of the run was applied.
pub fn fail(conn: &mut DbConn, run_id: &str, log: &[LogLine]) -> Result<(), LifecycleError> {
    let changes = Changes {
        finished_at: Some(now()),
        progress_processed: Some(progress_total(conn, run_id)?),
        logs: Some(with_log_lines(conn, run_id, log)?),
        ..Changes::default()
    };
    apply(conn, run_id, Step::Fail, Failed, changes)
}

/// Queues a new run of a final run's push. A run that has not finished (or waits for
/// approval) cannot be retried.
pub fn retry(conn: &mut DbConn, original: &RunRow) -> Result<RunRow, LifecycleError> {
    if !allowed(original.status, Step::Retry, Pending) {
        return Err(LifecycleError::Refused {
            step: Step::Retry,
            current: Some(original.status),
        });
    }
    Ok(runs::retry(conn, original)?)
}

fn progress_total(conn: &mut DbConn, run_id: &str) -> QueryResult<i32> {
    sync_runs::table
        .find(run_id)
        .select(sync_runs::progress_total)
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_reachable_from_pending_and_only_final_statuses_are_dead_ends() {
        let mut reached = vec![Pending];
        let mut frontier = vec![Pending];
        while let Some(from) = frontier.pop() {
            for (source, step, to) in TRANSITIONS {
                if *source == from && *step != Step::Retry && !reached.contains(to) {
                    reached.push(*to);
                    frontier.push(*to);
                }
            }
        }
        for status in RunStatus::ALL {
            assert!(reached.contains(status), "{status} is unreachable");
            let leaves = TRANSITIONS
                .iter()
                .any(|(from, step, _)| from == status && *step != Step::Retry);
            assert_eq!(leaves, !status.is_final(), "{status}");
        }
    }

    #[test]
    fn final_runs_change_only_by_being_retried_into_a_new_run() {
        for (from, step, to) in TRANSITIONS {
            if from.is_final() {
                assert_eq!((*step, *to), (Step::Retry, Pending), "{from}");
            }
        }
        for status in RunStatus::ALL {
            assert_eq!(allowed(*status, Step::Retry, Pending), status.is_final());
        }
    }

    #[test]
    fn only_a_run_awaiting_approval_can_be_approved_rejected_or_expire() {
        for step in [Step::Approve, Step::Reject, Step::Expire] {
            let froms: Vec<RunStatus> = TRANSITIONS
                .iter()
                .filter(|(_, s, _)| *s == step)
                .map(|(from, _, _)| *from)
                .collect();
            assert_eq!(froms, [AwaitingApproval], "{step:?}");
        }
        assert_eq!(sources(Step::Approve, Approved), [AwaitingApproval]);
        assert!(sources(Step::Approve, Rejected).is_empty());
        assert!(!allowed(Pending, Step::Approve, Approved));
        assert!(!allowed(Running, Step::Reject, Rejected));
    }

    #[test]
    fn a_waiting_run_never_goes_back_to_the_queue_or_to_running() {
        for (from, _, to) in TRANSITIONS {
            if *from == AwaitingApproval {
                assert!(to.is_final(), "{to}");
            }
        }
        assert_eq!(sources(Step::Claim, Running), [Pending]);
    }
}
