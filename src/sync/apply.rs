//! Writes a planned run into the database, inside the run's one transaction.
//!
//! The planner's decisions are buffered into batches and handed to a writer thread that owns
//! the run's connection, so that planning (CPU) and writing (SQLite) overlap on two cores.
//! Nothing is visible to anyone until the run's transaction commits, so a failure at any point
//! leaves the directory as it was.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::anyhow;

use crate::config::TestHooks;
use crate::domain::{search_key, EventKind, PendingArchiveReason, UserState};
use crate::store::deferred_indexes::{self, defer_user_indexes};
use crate::store::models::{EventRow, TeamRow, UserRow};
use crate::store::{
    begin_bulk_transaction, count_unchecked_missing_managers, events,
    refresh_statistics_after_first_batch, runs, teams, users, DbConn,
};
use crate::sync::faults::{RunTakenOver, TransientFault};
use crate::sync::plan::{Event, Sink};

/// Rows buffered before a batch is handed to the writer.
const BATCH: usize = 1_000;
/// Batches waiting for the writer before the planner waits too (bounds memory).
const BATCHES_IN_FLIGHT: usize = 4;

/// One batch of writes, in the order they must happen: teams, new users (managers first, as
/// planned), changed users (who may now point at a new manager), state changes, report lines.
#[derive(Default)]
pub struct Batch {
    teams: Vec<TeamRow>,
    created: Vec<UserRow>,
    updated: Vec<UserRow>,
    archived: Vec<String>,
    pending_archive: Vec<String>,
    /// Users missing from a full sync, pending_archive for the grace period.
    grace: Vec<String>,
    /// Text stamps of users the run leaves unchanged (`None` clears one).
    stamped: Vec<(String, Option<String>)>,
    events: Vec<EventRow>,
}

impl Batch {
    fn len(&self) -> usize {
        self.teams.len()
            + self.created.len()
            + self.updated.len()
            + self.archived.len()
            + self.pending_archive.len()
            + self.grace.len()
            + self.stamped.len()
            + self.events.len()
    }
}

/// What a run writes, for [`plan_and_write`].
pub struct RunWrite<'a> {
    pub organization_id: &'a str,
    pub run_id: &'a str,
    pub now: &'a str,
    /// A dry run writes its report and leaves the directory alone.
    pub dry_run: bool,
    /// A first sync of the organization: the users it may insert, at most (see
    /// [`defer_user_indexes`]); 0 for any other run. Ignored by a dry run.
    pub first_sync_users: usize,
}

/// What the planner hands the writer.
enum ToWriter {
    Batch(Batch),
    /// The plan is complete: the writer may finish the run's writes (without it, the planner
    /// failed and the run's transaction rolls back, so the writer stops there).
    Planned,
}

/// Runs `plan` with a sink whose batches a second thread writes through `conn`. Returns what
/// `plan` returns once every batch is written; the writer's error, if any, comes first, since
/// it is the cause of the planner's.
pub fn plan_and_write<T>(
    conn: &mut DbConn,
    write: &RunWrite<'_>,
    hooks: &TestHooks,
    plan: impl FnOnce(&mut DatabaseSink<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let inject_fault = hooks.transient_faults.take();
    let min_new_users = hooks
        .defer_user_indexes_from
        .unwrap_or(deferred_indexes::MIN_NEW_USERS);
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<ToWriter>(BATCHES_IN_FLIGHT);
        let writer = std::thread::Builder::new()
            .name("run-writer".into())
            .spawn_scoped(scope, move || {
                write_batches(conn, write, min_new_users, inject_fault, receiver)
            })?;
        let mut sink = DatabaseSink::new(sender, write.run_id, write.dry_run, hooks);
        let planned = plan(&mut sink)
            .and_then(|value| sink.flush().map(|()| value))
            .and_then(|value| sink.send(ToWriter::Planned).map(|()| value));
        drop(sink);
        let written = writer
            .join()
            .map_err(|_| anyhow!("the run's writer thread panicked"))?;
        written?;
        planned
    })
}

/// Writes the batches inside the run's transaction, then makes sure the run is still this
/// instance's claim before the transaction may commit (see [`runs::confirm_claim`]).
fn write_batches(
    conn: &mut DbConn,
    write: &RunWrite<'_>,
    min_new_users: usize,
    inject_fault: bool,
    from_planner: Receiver<ToWriter>,
) -> anyhow::Result<()> {
    let RunWrite {
        organization_id,
        run_id,
        now,
        ..
    } = *write;
    begin_bulk_transaction(conn)?;
    let holder = runs::claim_holder(conn, run_id)?;
    if inject_fault {
        return Err(TransientFault("the database was busy (a fault injected by a test)").into());
    }
    let new_users = if write.dry_run {
        0
    } else {
        write.first_sync_users
    };
    let deferred = defer_user_indexes(conn, new_users, min_new_users)?;
    let mut statistics_checked = false;
    let mut planned = false;
    for message in from_planner {
        let batch = match message {
            ToWriter::Batch(batch) => batch,
            ToWriter::Planned => {
                planned = true;
                break;
            }
        };
        teams::insert_all(conn, &batch.teams)?;
        users::insert_all(conn, &batch.created)?;
        if !statistics_checked && !batch.created.is_empty() {
            refresh_statistics_after_first_batch(conn)?;
            statistics_checked = true;
        }
        users::update_all(conn, &batch.updated)?;
        users::set_text_stamps(conn, organization_id, &batch.stamped)?;
        users::set_state(
            conn,
            organization_id,
            &batch.archived,
            UserState::Archived,
            None,
            now,
        )?;
        users::set_state(
            conn,
            organization_id,
            &batch.pending_archive,
            UserState::PendingArchive,
            Some(PendingArchiveReason::UpcomingTrips),
            now,
        )?;
        users::set_state(
            conn,
            organization_id,
            &batch.grace,
            UserState::PendingArchive,
            Some(PendingArchiveReason::MissingFromFullSync),
            now,
        )?;
        events::insert_all(conn, &batch.events)?;
    }
    if !planned {
        // The planner's error is the run's; nothing written here will be kept.
        return Ok(());
    }
    if let Some(deferred) = deferred {
        let started = std::time::Instant::now();
        deferred.build(conn)?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built the users' indexes after the run's inserts"
        );
    }
    // The keys the connection did not check row by row (see begin_bulk_write).
    let missing = count_unchecked_missing_managers(conn, organization_id)?;
    if missing > 0 {
        return Err(anyhow!(
            "{missing} user(s) would be left with a manager who does not exist"
        ));
    }
    // A run applied outside the queue (not `running` under a claim) has no claim to check.
    if let Some(holder) = holder {
        if !runs::confirm_claim(conn, run_id, &holder)? {
            return Err(RunTakenOver.into());
        }
    }
    Ok(())
}

pub struct DatabaseSink<'a> {
    writer: SyncSender<ToWriter>,
    run_id: &'a str,
    /// A dry run writes its report and leaves the directory alone.
    dry_run: bool,
    fail_after_writes: Option<usize>,
    directory_writes: usize,
    next_seq: i32,
    batch: Batch,
}

impl<'a> DatabaseSink<'a> {
    fn new(
        writer: SyncSender<ToWriter>,
        run_id: &'a str,
        dry_run: bool,
        hooks: &TestHooks,
    ) -> Self {
        DatabaseSink {
            writer,
            run_id,
            dry_run,
            fail_after_writes: hooks.fail_apply_after_writes,
            directory_writes: 0,
            next_seq: 1,
            batch: Batch::default(),
        }
    }

    /// Hands what is buffered to the writer.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.send(ToWriter::Batch(batch))
    }

    fn send(&self, message: ToWriter) -> anyhow::Result<()> {
        self.writer
            .send(message)
            .map_err(|_| anyhow!("the run's writer stopped"))
    }

    /// Counts a directory write; false in a dry run (nothing to write).
    fn directory_write(&mut self) -> anyhow::Result<bool> {
        if self.dry_run {
            return Ok(false);
        }
        self.directory_writes += 1;
        if self
            .fail_after_writes
            .is_some_and(|limit| self.directory_writes > limit)
        {
            self.flush()?;
            return Err(anyhow!(
                "injected failure after {} directory writes",
                self.directory_writes - 1
            ));
        }
        Ok(true)
    }

    fn flush_when_full(&mut self) -> anyhow::Result<()> {
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }
}

impl Sink for DatabaseSink<'_> {
    type Error = anyhow::Error;

    fn create_team(&mut self, team: TeamRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.batch.teams.push(team);
        }
        self.flush_when_full()
    }

    fn create_user(&mut self, user: UserRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.batch.created.push(user);
        }
        self.flush_when_full()
    }

    fn update_user(&mut self, user: UserRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.batch.updated.push(user);
        }
        self.flush_when_full()
    }

    fn set_state(
        &mut self,
        user_id: &str,
        state: UserState,
        reason: Option<PendingArchiveReason>,
    ) -> anyhow::Result<()> {
        if self.directory_write()? {
            let user_id = user_id.to_owned();
            match (state, reason) {
                (UserState::Archived, _) => self.batch.archived.push(user_id),
                (UserState::PendingArchive, Some(PendingArchiveReason::MissingFromFullSync)) => {
                    self.batch.grace.push(user_id)
                }
                (UserState::PendingArchive, _) => self.batch.pending_archive.push(user_id),
                (other, _) => return Err(anyhow!("a run does not move users to {other}")),
            }
        }
        self.flush_when_full()
    }

    fn stamp(&mut self, user_id: &str, stamp: Option<String>) -> anyhow::Result<()> {
        // Changes no value anyone reads of the user: not counted by the failure hook, which
        // counts the directory's changes.
        if !self.dry_run {
            self.batch.stamped.push((user_id.to_owned(), stamp));
        }
        self.flush_when_full()
    }

    fn event(&mut self, event: Event) -> anyhow::Result<()> {
        let row = event_row(self.run_id, self.next_seq, event);
        self.next_seq += 1;
        self.batch.events.push(row);
        self.flush_when_full()
    }
}

fn event_row(run_id: &str, seq: i32, event: Event) -> EventRow {
    let who = event.who;
    let search_key = search_key(&[
        who.first_name.as_deref(),
        who.last_name.as_deref(),
        who.email.as_deref(),
        who.external_id.as_deref(),
        event.team.as_deref(),
    ]);
    let changes = (!event.changes.is_empty())
        .then(|| serde_json::to_string(&event.changes).unwrap_or_else(|_| "[]".to_owned()));
    let (kind, code, severity, field, message) = match event.issue {
        Some(issue) => (
            EventKind::Issue,
            Some(issue.code.as_str().to_owned()),
            Some(issue.severity().as_str().to_owned()),
            issue.field,
            Some(issue.message),
        ),
        None => (EventKind::Update, None, None, None, None),
    };
    EventRow {
        run_id: run_id.to_owned(),
        seq,
        kind: kind.as_str().to_owned(),
        entity: event.entity.as_str().to_owned(),
        action: event.action.map(|a| a.as_str().to_owned()),
        code,
        severity,
        field,
        message,
        changes,
        source_row: event.row.map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
        external_id: who.external_id,
        email: who.email,
        first_name: who.first_name,
        last_name: who.last_name,
        user_id: event.user_id,
        team: event.team,
        search_key,
    }
}
