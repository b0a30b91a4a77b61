//! One run from its stored push to its report: read → validate → check → plan → apply.

use chrono::{NaiveDate, Utc};

use crate::catalogue::IssueCode;
use crate::config::TestHooks;
use crate::domain::{
    LogLevel, LogLine, PendingArchiveReason, RunCounts, RunStatus, RunSummary, UserState,
};
use ahash::AHashMap as HashMap;

use crate::store::models::{RunRow, TeamRow, UserRow};
use crate::store::runs::log_line;
use crate::store::settings::CurrentSettings;
use crate::store::{
    begin_bulk_write, end_bulk_write, events, now, payloads, runs, settings,
    size_page_cache_for_writes, teams, users, write_transaction, DbConn,
};

use crate::sync::apply::{plan_and_write, RunWrite};
use crate::sync::approval::check_approval_flow;
use crate::sync::candidate::Candidate;
use crate::sync::conflicts::check_email_owners;
use crate::sync::directory::Directory;
use crate::sync::duplicates::mark_duplicates;
use crate::sync::faults::{classify, Fault};
use crate::sync::gate::{self, ApprovalReason, PlannedChanges};
use crate::sync::intake::{read_records, ReadRecords, Unreadable};
use crate::sync::lifecycle::{self, Decision, LifecycleError, Planned};
use crate::sync::perimeter::check_new_records;
use crate::sync::plan::{needs_full_row, plan, Event, PlanContext, Sink, Totals};
use crate::sync::seats::Seats;
use crate::sync::unchanged::{finish_if_unchanged, StampContext};
use crate::sync::validate::Rules;

/// Why the engine takes up a run.
pub enum Purpose<'a> {
    /// A claimed (`running`) run of the queue: planned, then applied, held for approval, or
    /// (a dry run) only reported.
    Process,
    /// An administrator approved a run awaiting approval: it is planned again from its stored
    /// push against today's directory, its report replaced by the new plan's, and applied,
    /// without the approval gate (the administrator said yes).
    Approve(Decision<'a>),
}

/// What the approval gate decided for a run being processed.
enum Gate {
    /// Apply the plan.
    Apply,
    /// A dry run: report only, with the reasons a real run would have waited.
    DryRun,
    /// Report only, and wait for an administrator.
    Wait(Vec<ApprovalReason>),
}

/// How a claimed run was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    pub status: RunStatus,
    /// Finished as unchanged without its records being read (see `sync::unchanged`).
    pub recognised_unchanged: bool,
}

/// Processes a claimed (`running`) run to its final status, or to `awaiting_approval`: a
/// push recognised as unchanged is finished at once (`sync::unchanged`), any other is
/// planned. Errors are those of the run's bookkeeping itself (the database is gone); a run
/// that cannot be applied ends `failed` with a log line instead.
pub fn process_run(
    conn: &mut DbConn,
    run: &RunRow,
    hooks: &TestHooks,
) -> anyhow::Result<Processed> {
    let started = std::time::Instant::now();
    let recognised = if hooks.plan_every_run {
        None
    } else {
        finish_if_unchanged(conn, run)?
    };
    if let Some(status) = recognised {
        tracing::info!(
            records = run.progress_total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            %status,
            "run finished: every record is the one last applied, unchanged"
        );
        return Ok(Processed {
            status,
            recognised_unchanged: true,
        });
    }
    let status = take_up(conn, run, hooks, Purpose::Process)?;
    Ok(Processed {
        status,
        recognised_unchanged: false,
    })
}

/// Applies a run awaiting approval (see [`Purpose::Approve`]): it ends `approved`, or
/// `failed` when applying it fails (nothing is then applied). A run that is no longer
/// awaiting approval is an error holding [`LifecycleError::Refused`], and is left alone.
pub fn approve_run(
    conn: &mut DbConn,
    run: &RunRow,
    decision: Decision<'_>,
    hooks: &TestHooks,
) -> anyhow::Result<RunStatus> {
    take_up(conn, run, hooks, Purpose::Approve(decision))
}

fn take_up(
    conn: &mut DbConn,
    run: &RunRow,
    hooks: &TestHooks,
    purpose: Purpose<'_>,
) -> anyhow::Result<RunStatus> {
    let started = std::time::Instant::now();
    let mut phases = Phases {
        last: Some(started),
        ..Phases::default()
    };
    let mode = run.mode;
    let CurrentSettings {
        settings,
        version: settings_version,
    } = settings::current(conn, &run.organization_id)?;
    let approval = &settings.approval;
    let today = Utc::now().date_naive();
    let rules = Rules {
        settings: &settings,
        today,
    };

    let body = payloads::load(conn, &run.id)?;
    phases.mark("load_payload");
    let total = usize::try_from(run.progress_total).unwrap_or(0);
    let mut report_progress = |read: usize| {
        if let Err(error) = runs::set_progress(conn, &run.id, read, total) {
            tracing::warn!(%error, "cannot record the run's progress");
        }
    };
    let read = read_records(
        &run.content_type,
        body.into_reader(),
        total,
        &rules,
        &mut report_progress,
    );
    phases.mark("read_and_validate");
    let ReadRecords {
        mut candidates,
        warnings,
    } = match read {
        Ok(read) => read,
        Err(Unreadable(reason)) => {
            let line = log_line(LogLevel::Error, reason);
            lifecycle::fail(conn, &run.id, &[line])?;
            return Ok(RunStatus::Failed);
        }
    };
    mark_duplicates(&mut candidates);
    phases.mark("duplicates");

    let mut logs: Vec<LogLine> = warnings
        .into_iter()
        .map(|warning| log_line(LogLevel::Warning, warning))
        .collect();

    let approving = matches!(purpose, Purpose::Approve(_));
    // Set once the approval is recorded in the transaction: a failure after it fails the
    // run, a failure before it leaves the run awaiting.
    let mut approval_recorded = false;
    begin_bulk_write(conn)?;
    let applied = write_transaction(conn, |conn| -> anyhow::Result<(Totals, RunStatus)> {
        let directory = Directory::new(
            users::load_directory(conn, &run.organization_id)?,
            teams::load_all(conn, &run.organization_id)?,
        );
        phases.mark("load_directory");
        check_email_owners(&mut candidates, &directory);
        check_new_records(
            &mut candidates,
            &directory,
            settings.sync_perimeter.as_ref(),
            today,
        );
        let mut seats = Seats::new(settings.seat_limit, &directory);
        let order = check_approval_flow(&mut candidates, &directory, mode, today, &mut seats);
        phases.mark("directory_and_approval_checks");
        // From here the run writes (an approval first deletes its preview's report).
        size_page_cache_for_writes(conn, candidates.len())?;
        let changing: Vec<String> = order
            .iter()
            .filter_map(|&index| candidates[index].record.as_ref())
            .filter_map(|record| {
                let existing = directory.by_external_id(&record.external_id)?;
                needs_full_row(record, existing, today).then(|| existing.id.clone())
            })
            .collect();
        let full_rows: HashMap<String, UserRow> =
            users::load_by_ids(conn, &run.organization_id, &changing)?
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect();
        phases.mark("load_changing_users");
        let now = now();
        let context = PlanContext {
            organization_id: &run.organization_id,
            mode,
            today,
            now: &now,
            directory: &directory,
            full_rows: &full_rows,
            settings: &settings,
            stamps: StampContext::new(&settings),
        };
        let active_before = directory
            .users
            .iter()
            .filter(|user| user.state == UserState::Active)
            .count();
        let gate = match &purpose {
            Purpose::Approve(decision) => {
                lifecycle::approve(conn, &run.id, decision)?;
                approval_recorded = true;
                events::delete_for_run(conn, &run.id)?;
                Gate::Apply
            }
            Purpose::Process if run.dry_run => Gate::DryRun,
            Purpose::Process => {
                let counts = if gate::needs_figures(approval) {
                    let preview = plan(&candidates, &order, &context, &mut Discard)?;
                    phases.mark("approval_preview");
                    preview.counts
                } else {
                    RunCounts::default()
                };
                let reasons = gate::reasons(approval, &PlannedChanges::new(&counts, active_before));
                if reasons.is_empty() {
                    Gate::Apply
                } else {
                    Gate::Wait(reasons)
                }
            }
        };
        let write = RunWrite {
            organization_id: &run.organization_id,
            run_id: &run.id,
            now: &now,
            dry_run: !matches!(gate, Gate::Apply),
            first_sync_users: first_sync_users(&candidates, &directory, today),
        };
        let totals = plan_and_write(conn, &write, hooks, |sink| {
            plan(&candidates, &order, &context, sink)
        })?;
        phases.mark("plan_and_write");
        if let Some(hold) = hooks.hold_run_transaction {
            std::thread::sleep(hold);
        }
        let summary = summary(candidates.len(), &totals);
        let planned = |approval_reasons| Planned {
            summary: &summary,
            settings_version,
            approval_reasons,
            log: &logs,
        };
        let status = match gate {
            Gate::Apply if approving => {
                lifecycle::record_approved(conn, &run.id, &summary, settings_version, &logs)?;
                RunStatus::Approved
            }
            Gate::Apply | Gate::DryRun => {
                let status = if totals.issues.errors > 0 {
                    RunStatus::SucceededWithErrors
                } else {
                    RunStatus::Succeeded
                };
                let would_wait = if matches!(gate, Gate::DryRun) {
                    gate::reasons(
                        approval,
                        &PlannedChanges::new(&totals.counts, active_before),
                    )
                } else {
                    Vec::new()
                };
                lifecycle::finish(conn, &run.id, status, &planned(&would_wait))?;
                status
            }
            Gate::Wait(reasons) => {
                lifecycle::await_approval(
                    conn,
                    &run.id,
                    &planned(&reasons),
                    approval.expires_after_hours,
                )?;
                RunStatus::AwaitingApproval
            }
        };
        Ok((totals, status))
    });
    phases.mark("commit");
    // The run is committed: a failure here must not make it look failed.
    if let Err(error) = end_bulk_write(conn) {
        tracing::warn!(%error, "cannot restore the connection's settings after the run");
    }

    match applied {
        Ok((totals, status)) => {
            tracing::info!(
                records = candidates.len(),
                created = totals.counts.created,
                updated = totals.counts.updated,
                archived = totals.counts.archived,
                skipped = totals.counts.skipped,
                elapsed_ms = started.elapsed().as_millis() as u64,
                phases = %phases,
                %status,
                "run finished"
            );
            Ok(status)
        }
        Err(error) if approving && !approval_recorded => {
            // Refused (decided meanwhile) or the database was unreachable: the run is as it was.
            Err(error)
        }
        // A fault outside the run's data (to be retried), or a run another instance took over:
        // the worker's to handle.
        Err(error) if !approving && classify(&error) != Fault::Permanent => Err(error),
        Err(error) => {
            tracing::error!(error = ?error, "run failed; its transaction was rolled back");
            logs.push(log_line(
                LogLevel::Error,
                format!("Applying the run failed, so nothing of it was applied; the cause was logged by the service under run id {}. Retry it with POST /v1/syncs/{}/retry.", run.id, run.id),
            ));
            lifecycle::fail(conn, &run.id, &logs)?;
            Ok(RunStatus::Failed)
        }
    }
}

/// A first sync of the organization (no user of it in the directory yet): the people of the
/// push the run may create, i.e. not leaving and inside the sync perimeter. Any other run: 0.
/// Only such a run may build the users' indexes after its inserts (`store::deferred_indexes`):
/// it creates and never updates a user, and updates are what looks users up through those
/// indexes inside a run (the stamps' triggers).
fn first_sync_users(candidates: &[Candidate], directory: &Directory, today: NaiveDate) -> usize {
    if !directory.users.is_empty() {
        return 0;
    }
    candidates
        .iter()
        .filter(|candidate| !candidate.has(IssueCode::OUTSIDE_SYNC_PERIMETER))
        .filter_map(|candidate| candidate.record.as_ref())
        .filter(|record| !record.is_leaving(today))
        .count()
}

/// How long each step of a run took, for the log.
#[derive(Default)]
struct Phases {
    last: Option<std::time::Instant>,
    spent: Vec<(&'static str, u128)>,
}

impl Phases {
    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        let since = self
            .last
            .map_or(0, |last| now.duration_since(last).as_millis());
        self.spent.push((phase, since));
        self.last = Some(now);
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .spent
            .iter()
            .map(|(phase, ms)| format!("{phase}={ms}ms"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// A sink that keeps nothing: the approval gate's preview of a plan only needs its figures.
struct Discard;

impl Sink for Discard {
    type Error = std::convert::Infallible;

    fn create_team(&mut self, _: TeamRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn create_user(&mut self, _: UserRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn update_user(&mut self, _: UserRow) -> Result<(), Self::Error> {
        Ok(())
    }

    fn set_state(
        &mut self,
        _: &str,
        _: UserState,
        _: Option<PendingArchiveReason>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn stamp(&mut self, _: &str, _: Option<String>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn event(&mut self, _: Event) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// True when `error` is a refused lifecycle step (the run was not in a state to take it).
pub fn refused_status(error: &anyhow::Error) -> Option<Option<RunStatus>> {
    match error.downcast_ref::<LifecycleError>() {
        Some(LifecycleError::Refused { current, .. }) => Some(*current),
        _ => None,
    }
}

fn summary(records: usize, totals: &Totals) -> RunSummary {
    RunSummary {
        records: u32::try_from(records).unwrap_or(u32::MAX),
        counts: totals.counts.clone(),
        issues: totals.issues.clone(),
    }
}
