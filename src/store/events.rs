//! The report of a run: its events, in planned order.

use diesel::prelude::*;

use diesel::sql_types::{Integer, Nullable, Text};

use crate::store::limit::LimitInline;
use crate::store::static_insert::static_insert;

use crate::domain::{EntityKind, EventKind, UpdateAction};
use crate::store::models::EventRow;
use crate::store::schema::sync_events;
use crate::store::users::like_pattern;
use crate::store::DbConn;

static_insert!(InsertEvent for EventRow into "sync_events" {
    run_id: Text,
    seq: Integer,
    kind: Text,
    entity: Text,
    action: Nullable<Text>,
    code: Nullable<Text>,
    severity: Nullable<Text>,
    field: Nullable<Text>,
    message: Nullable<Text>,
    changes: Nullable<Text>,
    source_row: Nullable<Integer>,
    external_id: Nullable<Text>,
    email: Nullable<Text>,
    first_name: Nullable<Text>,
    last_name: Nullable<Text>,
    user_id: Nullable<Text>,
    team: Nullable<Text>,
    search_key: Text,
});

/// SQLite: a cached prepared statement per row (`InsertEvent`, static SQL); PostgreSQL: one
/// binary `COPY … FROM STDIN`.
pub fn insert_all(conn: &mut DbConn, rows: &[EventRow]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                InsertEvent(row).execute(c)?;
            }
        }
        DbConn::Postgres(c) => {
            if !rows.is_empty() {
                diesel::copy_from(sync_events::table)
                    .from_insertable(rows)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Removes a run's report (an approved run's planned events, replaced by its new plan's).
pub fn delete_for_run(conn: &mut DbConn, run_id: &str) -> QueryResult<usize> {
    diesel::delete(sync_events::table.filter(sync_events::run_id.eq(run_id))).execute(conn)
}

/// Filters of `GET /v1/syncs/{id}/events`.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub entity: Option<EntityKind>,
    pub action: Option<UpdateAction>,
    pub code: Option<String>,
    /// Matched, folded, against the person's names, e-mail and external id, and the team.
    pub query: Option<String>,
}

/// Events of a run in planned order, after the `after_seq` cursor.
pub fn list(
    conn: &mut DbConn,
    run_id: &str,
    filter: &EventFilter,
    after_seq: Option<i32>,
    limit: Option<i64>,
) -> QueryResult<Vec<EventRow>> {
    let mut query = sync_events::table
        .filter(sync_events::run_id.eq(run_id))
        .select(EventRow::as_select())
        .order(sync_events::seq)
        .into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(sync_events::kind.eq(kind.as_str()));
    }
    if let Some(entity) = filter.entity {
        query = query.filter(sync_events::entity.eq(entity.as_str()));
    }
    if let Some(action) = filter.action {
        query = query.filter(sync_events::action.eq(action.as_str()));
    }
    if let Some(code) = &filter.code {
        query = query.filter(sync_events::code.eq(code.clone()));
    }
    if let Some(text) = &filter.query {
        query = query.filter(
            sync_events::search_key
                .like(like_pattern(text))
                .escape('\\'),
        );
    }
    if let Some(after_seq) = after_seq {
        query = query.filter(sync_events::seq.gt(after_seq));
    }
    match limit {
        Some(limit) => query.limit_inline(limit).load(conn),
        None => query.load(conn),
    }
}

/// A page of a run's events (of one kind, or all), in planned order after `after_seq`:
/// the keyset pages that exports stream, one short query each.
pub fn page(
    conn: &mut DbConn,
    run_id: &str,
    kind: Option<EventKind>,
    after_seq: Option<i32>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let filter = EventFilter {
        kind,
        ..EventFilter::default()
    };
    list(conn, run_id, &filter, after_seq, Some(limit))
}

/// How many events of a run carry this issue code.
pub fn count_with_code(conn: &mut DbConn, run_id: &str, code: &str) -> QueryResult<i64> {
    sync_events::table
        .filter(sync_events::run_id.eq(run_id))
        .filter(sync_events::code.eq(code))
        .count()
        .get_result(conn)
}

/// A run of a period export and the time its lines are dated with.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PeriodRun {
    pub id: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// The organization's runs created in `[since, until)` (stored-form timestamps) that changed
/// the directory: not dry runs, and finished as `succeeded`, `succeeded_with_errors` or
/// `approved`. Oldest first, so that a period log reads in the order things happened.
pub fn applied_runs_in_period(
    conn: &mut DbConn,
    organization_id: &str,
    since: &str,
    until: &str,
) -> QueryResult<Vec<PeriodRun>> {
    use crate::domain::RunStatus;
    use crate::store::schema::sync_runs;
    let applied = [
        RunStatus::Succeeded.as_str(),
        RunStatus::SucceededWithErrors.as_str(),
        RunStatus::Approved.as_str(),
    ];
    sync_runs::table
        .filter(sync_runs::organization_id.eq(organization_id))
        .filter(sync_runs::created_at.ge(since))
        .filter(sync_runs::created_at.lt(until))
        .filter(sync_runs::dry_run.eq(false))
        .filter(sync_runs::status.eq_any(applied))
        .order(sync_runs::id)
        .select((sync_runs::id, sync_runs::created_at, sync_runs::finished_at))
        .load(conn)
}

/// What the CSV log of a run needs of an event: its line, what it did or found, and who.
#[derive(Debug, Clone, Queryable)]
pub struct EventOutcome {
    pub seq: i32,
    pub source_row: Option<i32>,
    pub entity: String,
    pub action: Option<String>,
    pub code: Option<String>,
    pub severity: Option<String>,
    pub message: Option<String>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub user_id: Option<String>,
}

/// A page of a run's events in planned order, after `after_seq`, without their changes (the
/// bulk of a created user's event).
pub fn outcomes(
    conn: &mut DbConn,
    run_id: &str,
    after_seq: i32,
    limit: i64,
) -> QueryResult<Vec<EventOutcome>> {
    sync_events::table
        .filter(sync_events::run_id.eq(run_id))
        .filter(sync_events::seq.gt(after_seq))
        .order(sync_events::seq)
        .select((
            sync_events::seq,
            sync_events::source_row,
            sync_events::entity,
            sync_events::action,
            sync_events::code,
            sync_events::severity,
            sync_events::message,
            sync_events::external_id,
            sync_events::email,
            sync_events::first_name,
            sync_events::last_name,
            sync_events::user_id,
        ))
        .limit_inline(limit)
        .load(conn)
}
