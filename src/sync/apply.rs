//! Writes a planned run into the database, inside the run's one transaction.
//!
//! Rows are buffered and written in batches; nothing is visible to anyone until the run's
//! transaction commits, so a failure at any point leaves the directory as it was.

use anyhow::anyhow;

use crate::config::TestHooks;
use crate::domain::{search_fold, EventKind};
use crate::store::models::{EventRow, TeamRow, UserRow};
use crate::store::{events, teams, users, DbConn};
use crate::sync::plan::{Event, Sink};

/// Rows buffered before a batch is written.
const BATCH: usize = 1_000;

pub struct DatabaseSink<'a> {
    conn: &'a mut DbConn,
    run_id: &'a str,
    /// A dry run writes its report and leaves the directory alone.
    dry_run: bool,
    fail_after_writes: Option<usize>,
    directory_writes: usize,
    next_seq: i32,
    teams: Vec<TeamRow>,
    created: Vec<UserRow>,
    updated: Vec<UserRow>,
    events: Vec<EventRow>,
}

impl<'a> DatabaseSink<'a> {
    pub fn new(conn: &'a mut DbConn, run_id: &'a str, dry_run: bool, hooks: &TestHooks) -> Self {
        DatabaseSink {
            conn,
            run_id,
            dry_run,
            fail_after_writes: hooks.fail_apply_after_writes,
            directory_writes: 0,
            next_seq: 1,
            teams: Vec::new(),
            created: Vec::with_capacity(BATCH),
            updated: Vec::with_capacity(BATCH),
            events: Vec::with_capacity(BATCH),
        }
    }

    /// Writes what is buffered: teams, then new users (managers first, as planned), then
    /// changed users (who may now point at a new manager), then report lines.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        teams::insert_all(self.conn, &self.teams)?;
        self.teams.clear();
        users::insert_all(self.conn, &self.created)?;
        self.created.clear();
        users::update_all(self.conn, &self.updated)?;
        self.updated.clear();
        events::insert_all(self.conn, &self.events)?;
        self.events.clear();
        Ok(())
    }

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
        let buffered =
            self.created.len() + self.updated.len() + self.events.len() + self.teams.len();
        if buffered >= BATCH {
            self.flush()?;
        }
        Ok(())
    }
}

impl Sink for DatabaseSink<'_> {
    type Error = anyhow::Error;

    fn create_team(&mut self, team: TeamRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.teams.push(team);
        }
        self.flush_when_full()
    }

    fn create_user(&mut self, user: UserRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.created.push(user);
        }
        self.flush_when_full()
    }

    fn update_user(&mut self, user: UserRow) -> anyhow::Result<()> {
        if self.directory_write()? {
            self.updated.push(user);
        }
        self.flush_when_full()
    }

    fn event(&mut self, event: Event) -> anyhow::Result<()> {
        let row = event_row(self.run_id, self.next_seq, event);
        self.next_seq += 1;
        self.events.push(row);
        self.flush_when_full()
    }
}

fn event_row(run_id: &str, seq: i32, event: Event) -> EventRow {
    let who = event.who;
    let search_key = search_fold(&format!(
        "{} {} {} {} {}",
        who.first_name.as_deref().unwrap_or(""),
        who.last_name.as_deref().unwrap_or(""),
        who.email.as_deref().unwrap_or(""),
        who.external_id.as_deref().unwrap_or(""),
        event.team.as_deref().unwrap_or(""),
    ));
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
