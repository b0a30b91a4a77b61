//! One run from its stored push to its report: read → validate → check → plan → apply.

use anyhow::Context;
use chrono::Utc;

use crate::config::TestHooks;
use crate::domain::{LogLevel, LogLine, RunStatus, RunSummary, SyncMode};
use ahash::AHashMap as HashMap;

use crate::store::models::{RunRow, UserRow};
use crate::store::runs::log_line;
use crate::store::{
    begin_bulk_write, end_bulk_write, now, organizations, runs, teams, users, write_transaction,
    DbConn,
};

use crate::sync::apply::plan_and_write;
use crate::sync::approval::check_approval_flow;
use crate::sync::conflicts::check_email_owners;
use crate::sync::directory::Directory;
use crate::sync::duplicates::mark_duplicates;
use crate::sync::faults::{classify, Fault};
use crate::sync::plan::{needs_full_row, plan, PlanContext, Totals};
use crate::sync::push::{read_json_records, ReadRecords};
use crate::sync::validate::Rules;

/// Processes a claimed (`running`) run to its final status. Errors are those of the run's
/// bookkeeping itself (the database is gone); a run that cannot be applied ends `failed` with
/// a log line instead.
pub fn process_run(
    conn: &mut DbConn,
    run: &RunRow,
    hooks: &TestHooks,
) -> anyhow::Result<RunStatus> {
    let started = std::time::Instant::now();
    let mut phases = Phases {
        last: Some(started),
        ..Phases::default()
    };
    let mode = SyncMode::from_stored(&run.mode).context("stored run has an unknown mode")?;
    let settings = organizations::settings(conn, &run.organization_id)?;
    let today = Utc::now().date_naive();
    let rules = Rules {
        settings: &settings,
        today,
    };

    let body = runs::payload(conn, &run.id)?;
    phases.mark("load_payload");
    let total = usize::try_from(run.progress_total).unwrap_or(0);
    let mut report_progress = |read: usize| {
        if let Err(error) = runs::set_progress(conn, &run.id, read, total) {
            tracing::warn!(%error, "cannot record the run's progress");
        }
    };
    let read = read_json_records(&body, &rules, &mut report_progress);
    drop(body);
    phases.mark("read_and_validate");
    let ReadRecords {
        mut candidates,
        unknown_fields,
    } = match read {
        Ok(read) => read,
        Err(error) => {
            let line = log_line(
                LogLevel::Error,
                format!("The stored push cannot be read: {error}. Nothing was applied."),
            );
            runs::finish(conn, &run.id, RunStatus::Failed, None, &[line])?;
            return Ok(RunStatus::Failed);
        }
    };
    mark_duplicates(&mut candidates);
    phases.mark("duplicates");

    let mut logs: Vec<LogLine> = unknown_fields
        .iter()
        .map(|(field, (records, first_row))| {
            log_line(
                LogLevel::Warning,
                format!("{records} record(s) carry the field {field:?} (first at row {first_row}), which is not part of the record format and was ignored."),
            )
        })
        .collect();

    begin_bulk_write(conn)?;
    let applied = write_transaction(conn, |conn| -> anyhow::Result<(Totals, RunStatus)> {
        let directory = Directory::new(
            users::load_directory(conn, &run.organization_id)?,
            teams::load_all(conn, &run.organization_id)?,
        );
        phases.mark("load_directory");
        check_email_owners(&mut candidates, &directory);
        let order = check_approval_flow(&mut candidates, &directory, mode, today);
        phases.mark("directory_and_approval_checks");
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
        };
        let totals = plan_and_write(
            conn,
            &run.organization_id,
            &run.id,
            &now,
            run.dry_run,
            hooks,
            |sink| plan(&candidates, &order, &context, sink),
        )?;
        phases.mark("plan_and_write");
        let status = if totals.issues.errors > 0 {
            RunStatus::SucceededWithErrors
        } else {
            RunStatus::Succeeded
        };
        let summary = summary(candidates.len(), &totals);
        runs::finish(conn, &run.id, status, Some(&summary), &logs)?;
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
        // A fault outside the run's data (to be retried), or a run another instance took over:
        // the worker's to handle.
        Err(error) if classify(&error) != Fault::Permanent => Err(error),
        Err(error) => {
            tracing::error!(error = ?error, "run failed; its transaction was rolled back");
            logs.push(log_line(
                LogLevel::Error,
                format!("Applying the run failed, so nothing of it was applied; the cause was logged by the service under run id {}. Retry it with POST /v1/syncs/{}/retry.", run.id, run.id),
            ));
            runs::finish(conn, &run.id, RunStatus::Failed, None, &logs)?;
            Ok(RunStatus::Failed)
        }
    }
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

fn summary(records: usize, totals: &Totals) -> RunSummary {
    RunSummary {
        records: u32::try_from(records).unwrap_or(u32::MAX),
        counts: totals.counts.clone(),
        issues: totals.issues.clone(),
    }
}
