//! Sync runs: the queue of pushes, their status, summary and log.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::store::limit::LimitInline;
use crate::store::on_backend::on_backend;

use crate::domain::{LogLevel, LogLine, RunStatus, RunSummary, SyncMode};
use crate::store::models::RunRow;
use crate::store::payloads::{self, PayloadChunks};
use crate::store::schema::{idempotency_keys, organizations, sync_runs};
use crate::store::{
    durable_write_transaction, is_unique_violation, new_id, now, timestamp, write_transaction,
    DbConn,
};

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_KEY_TTL_HOURS: i64 = 24;

/// A run is given this many attempts against crashes (the first and one resumption); transient
/// faults have their own, configurable, count.
pub const MAX_ATTEMPTS: i32 = 2;

/// A push to store.
pub struct NewRun<'a> {
    pub organization_id: &'a str,
    pub mode: SyncMode,
    pub source: &'a str,
    pub dry_run: bool,
    pub content_type: &'a str,
    /// The body exactly as accepted, stored in the run's transaction.
    pub body: &'a dyn PayloadChunks,
    pub record_count: usize,
    pub retry_of: Option<&'a str>,
    pub idempotency: Option<Idempotency<'a>>,
}

pub struct Idempotency<'a> {
    pub key: &'a str,
    /// A hash of the body: two pushes with the same key and body are the same push.
    pub request_hash: &'a str,
}

/// What storing a push did (with the run as a row, or as the view made of it).
pub enum Stored<Run = RunRow> {
    Created(Run),
    /// The Idempotency-Key was used before with the same request: its run.
    Replayed(Run),
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
            .get_result(conn)
            .optional()?;
        if let Some((request_hash, run_id, key_created_at)) = existing {
            if key_created_at >= expired_before {
                if request_hash != idempotency.request_hash {
                    return Ok(Stored::KeyReused);
                }
                let run = sync_runs::table
                    .find(&run_id)
                    .select(RunRow::as_select())
                    .get_result(conn)?;
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
    payloads::insert(conn, &run.id, new.body)?;
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
        payloads::copy(conn, &original.id, &run.id)?;
        Ok(run)
    })
}

/// The run, if it belongs to the organization.
pub fn find(conn: &mut DbConn, organization_id: &str, id: &str) -> QueryResult<Option<RunRow>> {
    // Polled by every integrator after each push: see `on_backend!`.
    on_backend!(conn, |c| sync_runs::table
        .find(id)
        .filter(sync_runs::organization_id.eq(organization_id))
        .select(RunRow::as_select())
        .get_result(c)
        .optional())
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
    query.limit_inline(limit).load(conn)
}

/// While `run` is pending: how many runs of its organization will be taken before it (those
/// pending that arrived before it, and any running or awaiting approval, which hold the
/// organization's queue). `None` for a run that is not pending. One count on the queue index.
pub fn queue_position(conn: &mut DbConn, run: &RunRow) -> QueryResult<Option<i64>> {
    use diesel::dsl::count_star;
    if run.status != RunStatus::Pending {
        return Ok(None);
    }
    let ahead: i64 = sync_runs::table
        .filter(sync_runs::organization_id.eq(&run.organization_id))
        .filter(
            sync_runs::status
                .eq(RunStatus::Pending)
                .and(sync_runs::id.lt(&run.id))
                .or(sync_runs::status.eq_any(holding())),
        )
        .select(count_star())
        .get_result(conn)?;
    Ok(Some(ahead))
}

/// An organization's queue as it stands, to give the positions of a page of runs with two
/// queries rather than a count per run (see [`queue_position`] for what a position counts).
pub struct OrganizationQueue {
    /// Ids of the pending runs, in arrival order (ids are time-ordered).
    pending: Vec<String>,
    /// Runs running or awaiting approval.
    holding: i64,
}

impl OrganizationQueue {
    pub fn read(conn: &mut DbConn, organization_id: &str) -> QueryResult<OrganizationQueue> {
        // One statement, so that a run moving from pending to running is counted once.
        let queued: Vec<(String, RunStatus)> = sync_runs::table
            .filter(sync_runs::organization_id.eq(organization_id))
            .filter(
                sync_runs::status
                    .eq(RunStatus::Pending)
                    .or(sync_runs::status.eq_any(holding())),
            )
            .order(sync_runs::id.asc())
            .select((sync_runs::id, sync_runs::status))
            .load(conn)?;
        let mut holding = 0;
        let mut pending = Vec::with_capacity(queued.len());
        for (id, status) in queued {
            if status == RunStatus::Pending {
                pending.push(id);
            } else {
                holding += 1;
            }
        }
        Ok(OrganizationQueue { pending, holding })
    }

    /// The position of `run`, when it is pending.
    pub fn position(&self, run: &RunRow) -> Option<i64> {
        if run.status != RunStatus::Pending {
            return None;
        }
        let ahead = self
            .pending
            .partition_point(|id| id.as_str() < run.id.as_str());
        Some(self.holding + i64::try_from(ahead).unwrap_or(i64::MAX))
    }
}

/// Who takes runs from the queue: an instance, and how long its claim on a run holds without
/// being renewed.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub instance_id: String,
    pub lease: std::time::Duration,
}

impl Claimant {
    fn lease_until(&self, from: DateTime<Utc>) -> String {
        let lease = Duration::from_std(self.lease).unwrap_or_else(|_| Duration::seconds(30));
        timestamp(from + lease)
    }
}

/// Statuses that hold an organization's queue: a run being applied, or one waiting for an
/// administrator's decision. Later runs of the organization wait behind them.
fn holding() -> [&'static str; 2] {
    [
        RunStatus::Running.as_str(),
        RunStatus::AwaitingApproval.as_str(),
    ]
}

/// Takes the next run and marks it `running`, claimed by `claimant` until its lease ends.
///
/// The queue's rules: an organization's runs are processed one at a time, in arrival order,
/// and not while one of them is running or awaiting approval; a run set back by a transient
/// fault waits until its `not_before`; organizations take turns (round robin): of the
/// organizations with a run ready, the one whose last claim is oldest goes first, so a small
/// push of one never waits behind the queue of another.
///
/// Safe with several instances on one database: on PostgreSQL each candidate organization is
/// locked (`FOR NO KEY UPDATE SKIP LOCKED`) and re-checked under the lock, and the run moves
/// from `pending` only if it still is; on SQLite the transaction holds the write lock from its
/// start, which serialises claimers the same way.
pub fn claim_next(conn: &mut DbConn, claimant: &Claimant) -> QueryResult<Option<RunRow>> {
    write_transaction(conn, |conn| {
        let at = Utc::now();
        for (organization_id, run_id) in queue_heads(conn, &timestamp(at))? {
            if let Some(run) = claim(conn, &organization_id, &run_id, claimant, at)? {
                return Ok(Some(run));
            }
        }
        Ok(None)
    })
}

/// The oldest pending run of each organization that nothing holds, if it is due, in turn
/// order: never-served organizations first, then the longest since served, then arrival.
fn queue_heads(conn: &mut DbConn, now: &str) -> QueryResult<Vec<(String, String)>> {
    let held: Vec<String> = sync_runs::table
        .filter(sync_runs::status.eq_any(holding()))
        .select(sync_runs::organization_id)
        .distinct()
        .load(conn)?;
    let heads: Vec<(String, Option<String>)> = sync_runs::table
        .filter(sync_runs::status.eq(RunStatus::Pending.as_str()))
        .filter(sync_runs::organization_id.ne_all(&held))
        .group_by(sync_runs::organization_id)
        .select((sync_runs::organization_id, diesel::dsl::min(sync_runs::id)))
        .load(conn)?;
    let head_ids: Vec<String> = heads.into_iter().filter_map(|(_, id)| id).collect();
    let mut ready: Vec<(Option<String>, String, String)> = Vec::with_capacity(head_ids.len());
    for chunk in head_ids.chunks(500) {
        let due: Vec<(String, String)> = sync_runs::table
            .filter(sync_runs::id.eq_any(chunk))
            .filter(
                sync_runs::not_before
                    .is_null()
                    .or(sync_runs::not_before.le(now)),
            )
            .select((sync_runs::organization_id, sync_runs::id))
            .load(conn)?;
        let organization_ids: Vec<&str> = due.iter().map(|(org, _)| org.as_str()).collect();
        let turns: std::collections::HashMap<String, Option<String>> = organizations::table
            .filter(organizations::id.eq_any(&organization_ids))
            .select((organizations::id, organizations::last_claimed_at))
            .load::<(String, Option<String>)>(conn)?
            .into_iter()
            .collect();
        for (organization_id, run_id) in due {
            let last_claimed = turns.get(&organization_id).cloned().flatten();
            ready.push((last_claimed, run_id, organization_id));
        }
    }
    // None (never claimed) sorts first.
    ready.sort();
    Ok(ready
        .into_iter()
        .map(|(_, run_id, organization_id)| (organization_id, run_id))
        .collect())
}

/// Claims `run_id` if it is still the due head of its organization's free queue.
fn claim(
    conn: &mut DbConn,
    organization_id: &str,
    run_id: &str,
    claimant: &Claimant,
    at: DateTime<Utc>,
) -> QueryResult<Option<RunRow>> {
    if !lock_organization(conn, organization_id)? {
        // Another instance is claiming for this organization right now.
        return Ok(None);
    }
    // Read again under the lock: what other instances committed meanwhile is visible now.
    let held: i64 = sync_runs::table
        .filter(sync_runs::organization_id.eq(organization_id))
        .filter(sync_runs::status.eq_any(holding()))
        .count()
        .get_result(conn)?;
    if held > 0 {
        return Ok(None);
    }
    let head: Option<String> = sync_runs::table
        .filter(sync_runs::organization_id.eq(organization_id))
        .filter(sync_runs::status.eq(RunStatus::Pending.as_str()))
        .order(sync_runs::id)
        .select(sync_runs::id)
        .limit_inline(1)
        .get_result(conn)
        .optional()?;
    if head.as_deref() != Some(run_id) {
        return Ok(None);
    }
    let now = timestamp(at);
    let claimed = diesel::update(
        sync_runs::table
            .find(run_id)
            .filter(sync_runs::status.eq(RunStatus::Pending.as_str()))
            .filter(
                sync_runs::not_before
                    .is_null()
                    .or(sync_runs::not_before.le(&now)),
            ),
    )
    .set((
        sync_runs::status.eq(RunStatus::Running.as_str()),
        sync_runs::started_at.eq(&now),
        sync_runs::attempts.eq(sync_runs::attempts + 1),
        sync_runs::claimed_by.eq(&claimant.instance_id),
        sync_runs::lease_expires_at.eq(claimant.lease_until(at)),
        sync_runs::not_before.eq(None::<String>),
    ))
    .execute(conn)?;
    if claimed == 0 {
        return Ok(None);
    }
    diesel::update(organizations::table.find(organization_id))
        .set(organizations::last_claimed_at.eq(&now))
        .execute(conn)?;
    sync_runs::table
        .find(run_id)
        .select(RunRow::as_select())
        .get_result(conn)
        .map(Some)
}

/// PostgreSQL: locks the organization's row for this claim, or answers false at once when
/// another instance holds it. SQLite: the write transaction already excludes other claimers.
fn lock_organization(conn: &mut DbConn, organization_id: &str) -> QueryResult<bool> {
    match conn {
        DbConn::Postgres(pg) => organizations::table
            .find(organization_id)
            .select(organizations::id)
            .for_no_key_update()
            .skip_locked()
            .first::<String>(pg)
            .optional()
            .map(|locked| locked.is_some()),
        DbConn::Sqlite(_) => Ok(true),
    }
}

/// Extends this instance's lease on a run it is processing (its heartbeat). False when the run
/// is no longer its own: finished, or taken over after the lease expired.
pub fn renew_lease(conn: &mut DbConn, run_id: &str, claimant: &Claimant) -> QueryResult<bool> {
    let renewed = diesel::update(
        sync_runs::table
            .find(run_id)
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .filter(sync_runs::claimed_by.eq(&claimant.instance_id)),
    )
    .set(sync_runs::lease_expires_at.eq(claimant.lease_until(Utc::now())))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// The instance holding a running run.
pub fn claim_holder(conn: &mut DbConn, run_id: &str) -> QueryResult<Option<String>> {
    sync_runs::table
        .find(run_id)
        .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
        .select(sync_runs::claimed_by)
        .get_result::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Inside the run's transaction, before it commits: true if the run is still running under
/// `holder`'s claim. On PostgreSQL the run's row then stays locked until the commit, so that
/// no take-over slips in between this check and the commit.
pub fn confirm_claim(conn: &mut DbConn, run_id: &str, holder: &str) -> QueryResult<bool> {
    let query = sync_runs::table
        .find(run_id)
        .select((sync_runs::status, sync_runs::claimed_by));
    let found: Option<(String, Option<String>)> = match conn {
        DbConn::Postgres(pg) => query.for_update().get_result(pg).optional()?,
        DbConn::Sqlite(_) => query.get_result(conn).optional()?,
    };
    Ok(matches!(found, Some((status, claimed_by))
        if status == RunStatus::Running.as_str() && claimed_by.as_deref() == Some(holder)))
}

/// Puts back in the queue a run that a transient fault interrupted (nothing of it was
/// applied), to be tried again after an exponential backoff, or ends it `failed` once it has
/// had `max_attempts`. Only while the run is still this claimant's; `None` otherwise.
pub fn requeue_after_transient_fault(
    conn: &mut DbConn,
    run_id: &str,
    claimant: &Claimant,
    cause: &str,
    backoff: std::time::Duration,
    max_attempts: u32,
) -> QueryResult<Option<RunStatus>> {
    write_transaction(conn, |conn| {
        let failures: Option<i32> = sync_runs::table
            .find(run_id)
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .filter(sync_runs::claimed_by.eq(&claimant.instance_id))
            .select(sync_runs::transient_failures)
            .get_result(conn)
            .optional()?;
        let Some(failures) = failures.map(|f| f + 1) else {
            return Ok(None);
        };
        let attempts = u32::try_from(failures).unwrap_or(u32::MAX);
        let (status, not_before, line) = if attempts >= max_attempts {
            (
                RunStatus::Failed,
                None,
                log_line(
                    LogLevel::Error,
                    format!("The run was tried {attempts} times and each time a fault outside its data stopped it (last: {cause}). Nothing of it was applied; retry it with POST /v1/syncs/{run_id}/retry."),
                ),
            )
        } else {
            let at = Utc::now() + retry_delay(backoff, attempts);
            (
                RunStatus::Pending,
                Some(timestamp(at)),
                log_line(
                    LogLevel::Warning,
                    format!("A fault outside the run's data stopped it ({cause}); nothing of it was applied. It is queued again and will be tried after {} (attempt {} of {max_attempts}).", timestamp(at), attempts + 1),
                ),
            )
        };
        let logs = with_log_lines(conn, run_id, std::slice::from_ref(&line))?;
        diesel::update(sync_runs::table.find(run_id))
            .set((
                sync_runs::status.eq(status.as_str()),
                sync_runs::logs.eq(logs),
                sync_runs::transient_failures.eq(failures),
                sync_runs::not_before.eq(not_before),
                sync_runs::claimed_by.eq(None::<String>),
                sync_runs::lease_expires_at.eq(None::<String>),
                sync_runs::finished_at.eq(status.is_final().then(now)),
                sync_runs::progress_processed.eq(0),
            ))
            .execute(conn)?;
        Ok(Some(status))
    })
}

/// The wait before attempt `failures + 1`: `backoff`, doubled at each further failure, at most
/// ten minutes.
pub fn retry_delay(backoff: std::time::Duration, failures: u32) -> Duration {
    let doubled = backoff.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = doubled.min(std::time::Duration::from_secs(600));
    Duration::from_std(capped).unwrap_or_else(|_| Duration::minutes(10))
}

/// Ends `failed` a run this claimant holds, after an error that is neither transient nor a
/// take-over. False if the run is no longer its own.
pub fn fail_claimed(
    conn: &mut DbConn,
    run_id: &str,
    claimant: &Claimant,
    line: LogLine,
) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let held = claim_holder(conn, run_id)?;
        if held.as_deref() != Some(claimant.instance_id.as_str()) {
            return Ok(false);
        }
        finish(
            conn,
            run_id,
            RunStatus::Failed,
            None,
            std::slice::from_ref(&line),
        )?;
        Ok(true)
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

/// Ends a run: its final status, what it found, and lines for its log.
pub fn finish(
    conn: &mut DbConn,
    run_id: &str,
    status: RunStatus,
    summary: Option<&RunSummary>,
    log: &[LogLine],
) -> QueryResult<()> {
    let logs = with_log_lines(conn, run_id, log)?;
    let summary = summary.map(|s| serde_json::to_string(s).unwrap_or_default());
    let total: i32 = sync_runs::table
        .find(run_id)
        .select(sync_runs::progress_total)
        .get_result(conn)?;
    diesel::update(sync_runs::table.find(run_id))
        .set((
            sync_runs::status.eq(status.as_str()),
            sync_runs::summary.eq(summary),
            sync_runs::logs.eq(logs),
            sync_runs::finished_at.eq(now()),
            sync_runs::progress_processed.eq(total),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Puts runs that a crash left `running` back in the queue, or fails those that were
/// interrupted too often. Nothing of them was applied: a run applies in one transaction. For a
/// start on SQLite, where this is the only instance: every running run was this process's.
pub fn recover_interrupted(conn: &mut DbConn) -> QueryResult<Vec<(String, RunStatus)>> {
    write_transaction(conn, |conn| {
        let interrupted: Vec<(String, i32, i32)> = sync_runs::table
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .select((
                sync_runs::id,
                sync_runs::attempts,
                sync_runs::transient_failures,
            ))
            .load(conn)?;
        let queued_again = "The service stopped while processing this run; nothing of it was applied, and it was queued again.";
        interrupted
            .into_iter()
            .map(|(id, attempts, transient)| {
                let status = requeue_interrupted(conn, &id, attempts - transient, queued_again)?;
                Ok((id, status))
            })
            .collect()
    })
}

/// Takes over the runs whose lease expired: their instance stopped renewing it (killed,
/// cut off from the database, frozen). Each goes back to the queue with a line in its log,
/// or ends `failed` if it was interrupted too often. A run with no lease (left by a version
/// without leases, or by hand) counts as expired. On PostgreSQL rows locked by a live
/// transaction are skipped: their run is being finished right now.
pub fn take_over_expired(conn: &mut DbConn) -> QueryResult<Vec<(String, RunStatus)>> {
    let now = now();
    let expired = |now: &str| {
        sync_runs::table
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .filter(
                sync_runs::lease_expires_at
                    .is_null()
                    .or(sync_runs::lease_expires_at.lt(now.to_owned())),
            )
    };
    // A read first, so that the usual case (nothing expired) takes no write lock.
    let any: i64 = expired(&now).count().get_result(conn)?;
    if any == 0 {
        return Ok(Vec::new());
    }
    write_transaction(conn, |conn| {
        let query = sync_runs::table
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .filter(
                sync_runs::lease_expires_at
                    .is_null()
                    .or(sync_runs::lease_expires_at.lt(&now)),
            )
            .select((
                sync_runs::id,
                sync_runs::attempts,
                sync_runs::transient_failures,
                sync_runs::claimed_by,
                sync_runs::lease_expires_at,
            ));
        type Expired = (String, i32, i32, Option<String>, Option<String>);
        let expired: Vec<Expired> = match conn {
            DbConn::Postgres(pg) => query.for_update().skip_locked().load(pg)?,
            DbConn::Sqlite(_) => query.load(conn)?,
        };
        expired
            .into_iter()
            .map(|(id, attempts, transient, holder, lease)| {
                let holder = holder.unwrap_or_else(|| "unknown".to_owned());
                let lease = lease.unwrap_or_else(|| "never set".to_owned());
                let message = format!("The instance {holder} processing this run stopped renewing its lease (expiry: {lease}), so another instance took it over: nothing of it was applied, and it was queued again.");
                let status = requeue_interrupted(conn, &id, attempts - transient, &message)?;
                Ok((id, status))
            })
            .collect()
    })
}

/// Back to `pending` with `message` in the log, or `failed` after [`MAX_ATTEMPTS`]
/// interruptions.
fn requeue_interrupted(
    conn: &mut DbConn,
    id: &str,
    interruptions: i32,
    message: &str,
) -> QueryResult<RunStatus> {
    let (status, line) = if interruptions >= MAX_ATTEMPTS {
        (
            RunStatus::Failed,
            log_line(
                LogLevel::Error,
                format!("The run was interrupted {interruptions} times (the service stopped while processing it) and was given up. Nothing of it was applied; retry it with POST /v1/syncs/{id}/retry."),
            ),
        )
    } else {
        (
            RunStatus::Pending,
            log_line(LogLevel::Warning, message.to_owned()),
        )
    };
    let logs = with_log_lines(conn, id, std::slice::from_ref(&line))?;
    let finished_at = status.is_final().then(now);
    diesel::update(sync_runs::table.find(id))
        .set((
            sync_runs::status.eq(status.as_str()),
            sync_runs::logs.eq(logs),
            sync_runs::finished_at.eq(finished_at),
            sync_runs::progress_processed.eq(0),
            sync_runs::claimed_by.eq(None::<String>),
            sync_runs::lease_expires_at.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(status)
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
        .get_result(conn)?;
    let mut logs: Vec<LogLine> = serde_json::from_str(&stored).unwrap_or_default();
    logs.extend_from_slice(lines);
    Ok(serde_json::to_string(&logs).unwrap_or_else(|_| "[]".to_owned()))
}

/// What waits in the queue: pending runs and the records they carry, of one organization and
/// of all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingLoad {
    pub organization_runs: i64,
    pub organization_records: i64,
    pub runs: i64,
    pub records: i64,
}

/// The queue's load, for backpressure: two aggregate reads of the status index.
pub fn pending_load(conn: &mut DbConn, organization_id: &str) -> QueryResult<PendingLoad> {
    use diesel::dsl::{count_star, sum};
    let (organization_runs, organization_records): (i64, Option<i64>) = sync_runs::table
        .filter(sync_runs::status.eq(RunStatus::Pending))
        .filter(sync_runs::organization_id.eq(organization_id))
        .select((count_star(), sum(sync_runs::progress_total)))
        .get_result(conn)?;
    let (runs, records): (i64, Option<i64>) = sync_runs::table
        .filter(sync_runs::status.eq(RunStatus::Pending))
        .select((count_star(), sum(sync_runs::progress_total)))
        .get_result(conn)?;
    Ok(PendingLoad {
        organization_runs,
        organization_records: organization_records.unwrap_or(0),
        runs,
        records: records.unwrap_or(0),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_the_backoff_up_to_ten_minutes() {
        let backoff = std::time::Duration::from_secs(2);
        let seconds = |failures| retry_delay(backoff, failures).num_seconds();
        assert_eq!(seconds(1), 2);
        assert_eq!(seconds(2), 4);
        assert_eq!(seconds(3), 8);
        assert_eq!(seconds(9), 512);
        assert_eq!(seconds(10), 600);
        assert_eq!(seconds(40), 600);
    }
}
