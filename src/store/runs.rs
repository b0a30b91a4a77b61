//! Sync runs: the queue of pushes, their status, summary and log.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use crate::domain::{LogLevel, LogLine, RunStatus, SyncMode};
use crate::store::models::{PayloadRow, RunRow};
use crate::store::schema::{idempotency_keys, sync_payloads, sync_runs};
use crate::store::{
    durable_write_transaction, is_unique_violation, new_id, now, timestamp, write_transaction,
    DbConn,
};

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_KEY_TTL_HOURS: i64 = 24;

/// A run is given this many attempts (the first and one resumption after a crash).
pub const MAX_ATTEMPTS: i32 = 2;

/// A push to store.
pub struct NewRun<'a> {
    pub organization_id: &'a str,
    pub mode: SyncMode,
    pub source: &'a str,
    pub dry_run: bool,
    pub content_type: &'a str,
    pub body: &'a str,
    pub record_count: usize,
    pub retry_of: Option<&'a str>,
    pub idempotency: Option<Idempotency<'a>>,
}

pub struct Idempotency<'a> {
    pub key: &'a str,
    /// A hash of the body: two pushes with the same key and body are the same push.
    pub request_hash: &'a str,
}

/// What storing a push did.
pub enum Stored {
    Created(RunRow),
    /// The Idempotency-Key was used before with the same request: its run.
    Replayed(RunRow),
    /// The Idempotency-Key was used before with another request.
    KeyReused,
}

/// Stores the run and its payload durably, or finds the run an Idempotency-Key already made.
pub fn insert(conn: &mut DbConn, new: &NewRun<'_>) -> QueryResult<Stored> {
    match durable_write_transaction(conn, |conn| insert_in_transaction(conn, new)) {
        // Another instance stored the same key between our check and our insert (PostgreSQL):
        // its transaction has committed, so the key now resolves.
        Err(error) if new.idempotency.is_some() && is_unique_violation(&error) => {
            durable_write_transaction(conn, |conn| insert_in_transaction(conn, new))
        }
        other => other,
    }
}

fn insert_in_transaction(conn: &mut DbConn, new: &NewRun<'_>) -> QueryResult<Stored> {
    let created_at = now();
    if let Some(idempotency) = &new.idempotency {
        let expired_before = timestamp(Utc::now() - Duration::hours(IDEMPOTENCY_KEY_TTL_HOURS));
        let existing: Option<(String, String, String)> = idempotency_keys::table
            .filter(idempotency_keys::organization_id.eq(new.organization_id))
            .filter(idempotency_keys::idempotency_key.eq(idempotency.key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::run_id,
                idempotency_keys::created_at,
            ))
            .first(conn)
            .optional()?;
        if let Some((request_hash, run_id, key_created_at)) = existing {
            if key_created_at >= expired_before {
                if request_hash != idempotency.request_hash {
                    return Ok(Stored::KeyReused);
                }
                let run = sync_runs::table
                    .find(&run_id)
                    .select(RunRow::as_select())
                    .first(conn)?;
                return Ok(Stored::Replayed(run));
            }
        }
        // Keys older than a day are forgotten: this one if it was, and any other of the
        // organization, so that the table does not grow without end.
        diesel::delete(
            idempotency_keys::table
                .filter(idempotency_keys::organization_id.eq(new.organization_id))
                .filter(idempotency_keys::created_at.lt(&expired_before)),
        )
        .execute(conn)?;
    }

    let run = RunRow {
        id: new_id(),
        organization_id: new.organization_id.to_owned(),
        status: RunStatus::Pending,
        mode: new.mode,
        source: new.source.to_owned(),
        dry_run: new.dry_run,
        content_type: new.content_type.to_owned(),
        created_at: created_at.clone(),
        started_at: None,
        finished_at: None,
        attempts: 0,
        progress_processed: 0,
        progress_total: i32::try_from(new.record_count).unwrap_or(i32::MAX),
        summary: None,
        logs: "[]".to_owned(),
        retry_of: new.retry_of.map(str::to_owned),
        settings_version: None,
        approval_reasons: None,
        awaiting_since: None,
        approval_expires_at: None,
        decided_by: None,
        decision_reason: None,
        decided_at: None,
    };
    diesel::insert_into(sync_runs::table)
        .values(&run)
        .execute(conn)?;
    diesel::insert_into(sync_payloads::table)
        .values(&PayloadRow {
            run_id: run.id.clone(),
            body_lz4: lz4_flex::compress_prepend_size(new.body.as_bytes()),
        })
        .execute(conn)?;
    if let Some(idempotency) = &new.idempotency {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::organization_id.eq(new.organization_id),
                idempotency_keys::idempotency_key.eq(idempotency.key),
                idempotency_keys::request_hash.eq(idempotency.request_hash),
                idempotency_keys::run_id.eq(&run.id),
                idempotency_keys::created_at.eq(&created_at),
            ))
            .execute(conn)?;
    }
    Ok(Stored::Created(run))
}

/// Queues a new run of a stored push: same body, mode, source and dry-run flag, against the
/// directory as it is now. The payload is copied inside the database, not through memory.
pub fn retry(conn: &mut DbConn, original: &RunRow) -> QueryResult<RunRow> {
    durable_write_transaction(conn, |conn| {
        let run = RunRow {
            id: new_id(),
            status: RunStatus::Pending,
            created_at: now(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            progress_processed: 0,
            summary: None,
            logs: "[]".to_owned(),
            retry_of: Some(original.id.clone()),
            settings_version: None,
            approval_reasons: None,
            awaiting_since: None,
            approval_expires_at: None,
            decided_by: None,
            decision_reason: None,
            decided_at: None,
            ..original.clone()
        };
        diesel::insert_into(sync_runs::table)
            .values(&run)
            .execute(conn)?;
        let copied = sync_payloads::table
            .filter(sync_payloads::run_id.eq(&original.id))
            .select((
                run.id.as_str().into_sql::<diesel::sql_types::Text>(),
                sync_payloads::body_lz4,
            ));
        diesel::insert_into(sync_payloads::table)
            .values(copied)
            .into_columns((sync_payloads::run_id, sync_payloads::body_lz4))
            .execute(conn)?;
        Ok(run)
    })
}

/// The run, if it belongs to the organization.
pub fn find(conn: &mut DbConn, organization_id: &str, id: &str) -> QueryResult<Option<RunRow>> {
    sync_runs::table
        .find(id)
        .filter(sync_runs::organization_id.eq(organization_id))
        .select(RunRow::as_select())
        .first(conn)
        .optional()
}

/// Filters of `GET /v1/syncs`. Times are stored-form timestamps.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub source: Option<String>,
    /// Created at or after.
    pub since: Option<String>,
    /// Created before.
    pub until: Option<String>,
}

/// Newest first; `before_id` is the keyset cursor (the last id of the previous page).
pub fn list(
    conn: &mut DbConn,
    organization_id: &str,
    filter: &RunFilter,
    before_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<RunRow>> {
    let mut query = sync_runs::table
        .filter(sync_runs::organization_id.eq(organization_id))
        .select(RunRow::as_select())
        .order(sync_runs::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(sync_runs::status.eq(status));
    }
    if let Some(source) = &filter.source {
        query = query.filter(sync_runs::source.eq(source.clone()));
    }
    if let Some(since) = &filter.since {
        query = query.filter(sync_runs::created_at.ge(since.clone()));
    }
    if let Some(until) = &filter.until {
        query = query.filter(sync_runs::created_at.lt(until.clone()));
    }
    if let Some(before_id) = before_id {
        query = query.filter(sync_runs::id.lt(before_id.to_owned()));
    }
    query.load(conn)
}

pub fn payload(conn: &mut DbConn, run_id: &str) -> QueryResult<String> {
    let compressed: Vec<u8> = sync_payloads::table
        .find(run_id)
        .select(sync_payloads::body_lz4)
        .first(conn)?;
    let corrupt = |error: String| diesel::result::Error::DeserializationError(error.into());
    let bytes =
        lz4_flex::decompress_size_prepended(&compressed).map_err(|e| corrupt(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))
}

/// Takes the oldest pending run of an organization that has no run in progress and no run
/// awaiting approval, and marks it `running` (see `sync::lifecycle::claim`). Runs of one
/// organization are thus processed one at a time, in arrival order, and wait behind a run
/// that awaits an administrator's decision.
pub fn claim_next(conn: &mut DbConn) -> QueryResult<Option<RunRow>> {
    write_transaction(conn, |conn| {
        // Organizations whose queue is blocked: a run in progress, or one awaiting approval.
        let busy_organizations: Vec<String> = sync_runs::table
            .filter(sync_runs::status.eq_any([RunStatus::Running, RunStatus::AwaitingApproval]))
            .select(sync_runs::organization_id)
            .load(conn)?;
        let next: Option<String> = sync_runs::table
            .filter(sync_runs::status.eq(RunStatus::Pending))
            .filter(sync_runs::organization_id.ne_all(busy_organizations))
            .order(sync_runs::id)
            .select(sync_runs::id)
            .first(conn)
            .optional()?;
        let Some(id) = next else {
            return Ok(None);
        };
        crate::sync::lifecycle::claim(conn, &id)
    })
}

pub fn set_progress(
    conn: &mut DbConn,
    run_id: &str,
    processed: usize,
    total: usize,
) -> QueryResult<()> {
    diesel::update(sync_runs::table.find(run_id))
        .set((
            sync_runs::progress_processed.eq(i32::try_from(processed).unwrap_or(i32::MAX)),
            sync_runs::progress_total.eq(i32::try_from(total).unwrap_or(i32::MAX)),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn log_line(level: LogLevel, message: String) -> LogLine {
    LogLine {
        at: now(),
        level,
        message,
    }
}

/// The run's log with `lines` appended, ready to be written back.
pub fn with_log_lines(conn: &mut DbConn, run_id: &str, lines: &[LogLine]) -> QueryResult<String> {
    let stored: String = sync_runs::table
        .find(run_id)
        .select(sync_runs::logs)
        .first(conn)?;
    let mut logs: Vec<LogLine> = serde_json::from_str(&stored).unwrap_or_default();
    logs.extend_from_slice(lines);
    Ok(serde_json::to_string(&logs).unwrap_or_else(|_| "[]".to_owned()))
}

/// How many runs wait in each unfinished state, and since when the oldest of them was
/// created: `(status, count, oldest created_at)`. For `/metrics`; reads the status index.
pub fn queue_depths(conn: &mut DbConn) -> QueryResult<Vec<(String, i64, Option<String>)>> {
    use diesel::dsl::{count_star, min};
    let waiting = [
        RunStatus::Pending.as_str(),
        RunStatus::Running.as_str(),
        RunStatus::AwaitingApproval.as_str(),
    ];
    sync_runs::table
        .filter(sync_runs::status.eq_any(waiting))
        .group_by(sync_runs::status)
        .select((sync_runs::status, count_star(), min(sync_runs::created_at)))
        .load(conn)
}
