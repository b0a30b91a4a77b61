//! Sync runs: push a batch, list runs, read one.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use std::io::Read;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::QueueLimits;
use crate::domain::{IssueTotals, LogLine, RunCounts, RunStatus, RunSummary, SyncMode};
use crate::error::{AppError, Problem};
use crate::http::auth::{ReadAccess, WriteAccess};
use crate::http::pagination::{page_schema, Page, PageParams};
use crate::http::{point_read, AppState};
use crate::store::models::RunRow;
use crate::store::runs::{self, RunFilter, Stored};
use crate::store::timestamp;
use crate::sync::gate::ApprovalReason;
use crate::sync::intake::{Format, JSON_CONTENT_TYPE};
use crate::sync::lifecycle::{self, LifecycleError};
use crate::sync::push::{
    receive, store as store_push, BodyRules, PushKind, PushRejected, ReceivedPush, UploadParams,
};

/// A sync run.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e", "status": "succeeded_with_errors",
    "mode": "incremental", "source": "bamboohr", "dry_run": true,
    "created_at": "2026-11-25T09:00:00.123456Z", "started_at": "2026-11-25T09:00:00.200000Z",
    "finished_at": "2026-11-25T09:00:01.450000Z", "records": 3,
    "counts": {"created": 2, "updated": 0, "archived": 0, "reactivated": 0, "unchanged": 0,
               "skipped": 1, "duplicates": 0, "warnings": 0, "ignored": 0, "pending_archive": 0},
    "issues": {"total": 1, "errors": 1, "warnings": 0, "infos": 0, "users_affected": 1,
               "teams_affected": 0},
    "progress": {"processed": 3, "total": 3}, "logs": [], "retry_of": null,
    "planned": true, "settings_version": 3, "approval_reasons": [], "awaiting_since": null,
    "approval_expires_at": null, "decided_by": null, "decision_reason": null, "decided_at": null,
    "queue_position": null
}))]
pub struct RunView {
    #[schema(format = "uuid", example = "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e")]
    pub id: String,
    pub status: RunStatus,
    pub mode: SyncMode,
    #[schema(example = "bamboohr")]
    pub source: String,
    #[schema(example = true)]
    pub dry_run: bool,
    /// When the push was stored (RFC 3339, UTC).
    #[schema(format = "date-time", example = "2026-11-25T09:00:00.123456Z")]
    pub created_at: String,
    /// When a worker started the run; `null` while it waits.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-25T09:00:00.200000Z"
    )]
    pub started_at: Option<String>,
    /// When the run reached its final status; `null` until then.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-25T09:00:01.450000Z"
    )]
    pub finished_at: Option<String>,
    /// Records in the push.
    #[schema(example = 3)]
    pub records: u32,
    /// What the run did (for a dry run: what it would do). Zero until the run is planned.
    pub counts: RunCounts,
    pub issues: IssueTotals,
    pub progress: Progress,
    /// Why a run failed, when it was resumed, what it ignored.
    pub logs: Vec<LogLine>,
    /// The run this one re-runs, for retries; `null` otherwise.
    #[schema(required = true, format = "uuid", example = json!(null))]
    pub retry_of: Option<String>,
    /// True when nothing of the report (and counts) was applied: it is what the run would do
    /// (a dry run, a run awaiting approval, a rejected one, or an approved one whose
    /// application failed).
    #[schema(example = true)]
    pub planned: bool,
    /// The version of the provisioning settings the run was planned with (see
    /// `GET /v1/settings/provisioning/history`); `null` until it is planned.
    #[schema(required = true, minimum = 0, example = 3)]
    pub settings_version: Option<i32>,
    /// The approval limits the plan crossed: why the run waits (or waited) for approval; for
    /// a dry run, why a real run would have waited. Empty when none.
    pub approval_reasons: Vec<ApprovalReason>,
    /// When the run began to wait for approval; `null` if it never did.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-25T09:00:01.450000Z"
    )]
    pub awaiting_since: Option<String>,
    /// When the run expires (ends `rejected`) if nobody approves or rejects it before:
    /// `approval.expires_after_hours` after it began to wait; `null` if it never waited.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-28T09:00:01.450000Z"
    )]
    pub approval_expires_at: Option<String>,
    /// The name of the token that approved or rejected the run (`null` when it expired or
    /// nobody decided yet).
    #[schema(required = true, example = "admin")]
    pub decided_by: Option<String>,
    /// The reason given with the decision (`expired` for a run nobody decided on in time);
    /// `null` without one.
    #[schema(
        required = true,
        example = "Reorganisation of the sales team, checked with HR."
    )]
    pub decision_reason: Option<String>,
    /// When the run was approved, rejected or expired; `null` until then.
    #[schema(
        required = true,
        format = "date-time",
        example = "2026-11-25T10:12:40.031000Z"
    )]
    pub decided_at: Option<String>,
    /// While the run is `pending`: how many runs of its organization will be taken before it
    /// (the runs that arrived before it and still wait, and one being applied or awaiting
    /// approval); 0 when it is next. Organizations take turns, so other organizations' queues
    /// do not count. `null` once the run has left the queue.
    #[schema(required = true, minimum = 0, example = json!(null))]
    pub queue_position: Option<u32>,
}

impl RunView {
    /// The view of a run, with its queue position when it is pending (one indexed count).
    pub fn read(conn: &mut crate::store::DbConn, row: RunRow) -> Result<RunView, AppError> {
        let position = runs::queue_position(conn, &row)?;
        Ok(RunView::at_position(row, position))
    }

    /// The views of a page of one organization's runs: the queue is read once for the page
    /// (a count per pending run made a page of 20 the slowest read under load).
    pub fn read_page(
        conn: &mut crate::store::DbConn,
        organization_id: &str,
        rows: Vec<RunRow>,
    ) -> Result<Vec<RunView>, AppError> {
        let queue = if rows.iter().any(|row| row.status == RunStatus::Pending) {
            Some(runs::OrganizationQueue::read(conn, organization_id)?)
        } else {
            None
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let position = queue.as_ref().and_then(|queue| queue.position(&row));
                RunView::at_position(row, position)
            })
            .collect())
    }

    /// The view of a run whose queue position (when it is pending) is already known.
    fn at_position(row: RunRow, position: Option<i64>) -> RunView {
        let mut view = RunView::from(row);
        view.queue_position = position.map(|ahead| u32::try_from(ahead).unwrap_or(u32::MAX));
        view
    }
}

/// Records processed so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    #[schema(example = 3)]
    pub processed: u32,
    #[schema(example = 3)]
    pub total: u32,
}

impl From<RunRow> for RunView {
    fn from(row: RunRow) -> RunView {
        let summary: RunSummary = row
            .summary
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let total = u32::try_from(row.progress_total).unwrap_or(0);
        let status = row.status;
        RunView {
            planned: lifecycle::report_is_planned(status, row.dry_run),
            settings_version: row.settings_version,
            approval_reasons: row
                .approval_reasons
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
            awaiting_since: row.awaiting_since,
            approval_expires_at: row.approval_expires_at,
            decided_by: row.decided_by,
            decision_reason: row.decision_reason,
            decided_at: row.decided_at,
            status,
            mode: row.mode,
            source: row.source,
            dry_run: row.dry_run,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            records: total,
            counts: summary.counts,
            issues: summary.issues,
            progress: Progress {
                processed: u32::try_from(row.progress_processed).unwrap_or(0),
                total,
            },
            logs: serde_json::from_str(&row.logs).unwrap_or_default(),
            retry_of: row.retry_of,
            id: row.id,
            queue_position: None,
        }
    }
}

/// The body of a JSON push.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Documents the body; the handler reads it lazily (see check_json_envelope).
pub struct PushBody {
    /// The HR tool the data comes from: 1 to 100 characters, not blank, without control
    /// characters. Default `api`.
    #[schema(
        example = "bamboohr",
        max_length = 100,
        min_length = 1,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    source: Option<String>,
    /// `full`: users missing from the push are archived. Default `incremental`.
    #[schema(nullable = false)]
    mode: Option<SyncMode>,
    /// Plan and report, apply nothing. Default false.
    #[schema(nullable = false, example = true)]
    dry_run: Option<bool>,
    /// The employee records.
    users: Vec<UserRecord>,
}

/// One employee record. Every field is checked when the run is processed: a broken field is
/// an issue of the run (with a code and remediation steps), not a failed push. An absent
/// field leaves the directory's value as it is; `null` (or empty text) clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UserRecord {
    /// The HR tool's own id of the person; required for the record to be applied.
    #[schema(example = "E1042")]
    external_id: Option<String>,
    /// Work e-mail address, `name@company.com`; required.
    #[schema(example = "ada.lovelace@example.com")]
    email: Option<String>,
    /// Letters, digits, `.`, `_`, `@` and `+`.
    #[schema(example = "ada.lovelace")]
    username: Option<String>,
    /// Required.
    #[schema(example = "Ada")]
    first_name: Option<String>,
    /// Required.
    #[schema(example = "Lovelace")]
    last_name: Option<String>,
    /// YYYY-MM-DD.
    #[schema(example = "2024-03-01")]
    start_date: Option<String>,
    /// YYYY-MM-DD; a past end date offboards the user.
    #[schema(example = json!(null))]
    end_date: Option<String>,
    /// MM/DD/YYYY (month first).
    #[schema(example = "12/10/1985")]
    date_of_birth: Option<String>,
    /// One of the organization's allowed values (by default `M` or `F`).
    #[schema(example = "F")]
    gender: Option<String>,
    /// `+<country code> <number>`, e.g. `+44 2071838750`.
    #[schema(example = "+44 2071838750")]
    phone: Option<String>,
    /// The manager's `external_id` (in this push or already in the directory).
    #[schema(example = "E1001")]
    manager_external_id: Option<String>,
    /// `member`, `admin` or `guest` (any letter case). Default `member`.
    #[schema(example = "member")]
    role: Option<String>,
    /// `all_trips`, `out_of_policy` or `none`.
    #[schema(example = "out_of_policy")]
    approval_process: Option<String>,
    /// `active`, `terminated` or `rescinded`.
    #[schema(example = "active")]
    employment_status: Option<String>,
    /// Team names; a team that does not exist yet is created.
    #[schema(example = json!(["Engineering"]))]
    teams: Option<Vec<String>>,
    /// Values of the organization's custom fields, by field name.
    #[schema(example = json!({"cost_center": "CC-204"}))]
    custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A safe push to try: an incremental dry run (nothing is applied) of two valid people and
/// one whose date of birth is not MM/DD/YYYY, so that the report shows an issue.
fn push_example() -> serde_json::Value {
    serde_json::json!({
        "source": "bamboohr",
        "mode": "incremental",
        "dry_run": true,
        "users": [
            {
                "external_id": "E1001", "email": "ada.lovelace@example.com",
                "first_name": "Ada", "last_name": "Lovelace", "start_date": "2024-03-01",
                "date_of_birth": "12/10/1985", "phone": "+44 2071838750", "gender": "F",
                "role": "admin", "teams": ["Engineering"]
            },
            {
                "external_id": "E1002", "email": "grace.hopper@example.com",
                "first_name": "Grace", "last_name": "Hopper", "start_date": "2024-03-04",
                "manager_external_id": "E1001", "teams": ["Engineering"]
            },
            {
                "external_id": "E1003", "email": "alan.turing@example.com",
                "first_name": "Alan", "last_name": "Turing", "start_date": "2024-04-01",
                "manager_external_id": "E1001", "date_of_birth": "1912-06-23"
            }
        ]
    })
}

/// The query parameters of a CSV upload (a JSON push carries them in its body instead).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; the handler reads them as UploadParams.
pub struct UploadQuery {
    /// CSV uploads only: the HR tool the file comes from. Default `api`.
    #[param(max_length = 100, min_length = 1)]
    source: Option<String>,
    /// CSV uploads only: `full` (users missing from the file are archived) or `incremental`
    /// (the default).
    mode: Option<SyncMode>,
    /// CSV uploads only: plan and report, apply nothing. Default false.
    dry_run: Option<bool>,
}

/// An example upload, as a spreadsheet program exports it.
const CSV_EXAMPLE: &str = "external_id,email,first_name,last_name,start_date,manager_external_id,teams,custom.cost_center\r\n\
E1001,grace.hopper@example.com,Grace,Hopper,2019-05-01,,Engineering,CC-10\r\n\
E1042,ada.lovelace@example.com,Ada,Lovelace,2024-03-01,E1001,Engineering|Research,CC-10\r\n\
E1043,jean.dupont@example.com,\"Jean, Jr.\",Dupont,2024-04-15,E1001,Sales,CC-20\r\n";

/// Push a batch of employee records
///
/// Stores the push durably and answers 202 with the new run; the run is processed in the
/// background (poll `GET /v1/syncs/{id}`). With an `Idempotency-Key` header, the same key
/// and body (and, for a file, the same query parameters) return the first run (200) for 24
/// hours.
///
/// **JSON** (`application/json`): the envelope below. A malformed envelope is 422 and nothing
/// is stored.
///
/// **CSV upload** (`text/csv`, `text/tab-separated-values` or `application/csv`): a file
/// of employees, one record per line, with `source`, `mode` and `dry_run` as query parameters.
/// The header names the columns with the record's field names (matched without regard to
/// case or surrounding spaces): `external_id`, `email`, `first_name` and `last_name` are
/// required columns; `username`, `start_date`, `end_date`, `date_of_birth`, `gender`,
/// `phone`, `manager_external_id`, `role`, `approval_process`, `employment_status` and `teams`
/// (several teams separated by `|`) are optional; `custom.<key>` columns are custom fields.
/// Other columns are kept in the stored file and named once in the run's `logs`. The
/// delimiter (`,`, `;` or tab) is detected from the header line; a UTF-8 byte order mark,
/// Windows line ends and quoted values with delimiters, quotes and line breaks are read. A
/// column left out keeps the users' values; an empty cell clears an optional field. A line
/// break inside a value reads as a space.
///
/// File-level failures are answered at once with 422 and nothing is stored (the `detail`
/// says which): `File encoding is not supported. Please make sure the file is encoded using
/// UTF-8.` (naming the line of the first bad byte), `File contains no data.` (an empty file
/// or a header alone), a required column missing (every one named), a column named twice
/// (named). A line that cannot be read (wrong number of fields, an unclosed quote) is a
/// `CSV_LINE_UNREADABLE` issue of the run on that line, and the rest of the file goes on;
/// every issue's `row` is the line of the file (the header is line 1).
///
/// Either kind of body may be sent with `Content-Encoding: gzip`; the size limit applies to
/// the body after decompression.
#[utoipa::path(
    operation_id = "pushSync",
    tag = "syncs",
    request_body(
        description = "A JSON push, or a CSV file of employees (`text/csv`; the same file is also accepted as `text/tab-separated-values` or `application/csv`).",
        content(
            (PushBody = "application/json", example = push_example),
            (String = "text/csv", example = json!(CSV_EXAMPLE)),
        )
    ),
    params(
        UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, nullable = false, max_length = 255, min_length = 1, pattern = "^[!-~]+$",
            description = "Makes retries safe: the same key and request return the same run. 1 to 255 visible ASCII characters (no spaces)."),
        ("Content-Encoding" = Option<String>, Header, nullable = false, pattern = "^(gzip|x-gzip|identity)$",
            description = "`gzip` for a compressed body (the size limit applies after decompression), or `identity`."),
    ),
    responses(
        (status = 202, description = "The push is stored and queued.", body = RunView,
            headers(("Location" = String, description = "The run's URL, `/v1/syncs/{id}`."))),
        (status = 200, description = "Replay of an Idempotency-Key: the first run.", body = RunView,
            headers(("Location" = String, description = "The run's URL, `/v1/syncs/{id}`."))),
        (status = 400, description = "Malformed request: a query parameter of a CSV upload is not valid, query parameters were given with a JSON push, or the gzip body is corrupt.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the sync:write scope.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the size limit (after decompression).", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor CSV, or a Content-Encoding other than gzip.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The queue is full (backpressure): the organization, or the service, has more runs or records waiting than its limits allow. Nothing was stored; retry after Retry-After seconds.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before pushing again."))),
        (status = 422, description = "The JSON envelope is not well formed, the CSV file fails a file-level check, or the Idempotency-Key was used for another request.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/syncs")]
pub async fn push(
    caller: WriteAccess,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let content_type = media_type(&req);
    let format = Format::of(&content_type).ok_or_else(|| {
        AppError::UnsupportedMediaType(format!(
            "Push employee records as {JSON_CONTENT_TYPE}, or upload a file as text/csv (or text/tab-separated-values, application/csv); got {content_type:?}."
        ))
    })?;
    let gzip = is_gzip(&req)?;
    let params = upload_params(&req, format)?;
    let idempotency_key = idempotency_key(&req)?;
    let rules = state.push_rules.clone();
    refuse_announced_oversize(&req, rules.max_bytes)?;
    let kind = match format {
        Format::Json => PushKind::Json,
        Format::Csv => PushKind::Csv {
            content_type,
            params,
        },
    };
    // Backpressure before the body is read: a full queue refuses a 1 GiB push without
    // receiving it. (A soft limit: pushes received at once may all pass the last free place.)
    let organization_id = caller.organization_id.clone();
    let pool = state.pool.clone();
    let queue_limits = state.queue_limits;
    web::block(move || -> Result<(), AppError> {
        let mut conn = pool.get()?;
        check_queue_room(&mut conn, &organization_id, &queue_limits)
    })
    .await??;
    let received = {
        // Bounds the pushes whose bodies are being read (memory, spool space, threads).
        let _receiving = state
            .receiving
            .acquire()
            .await
            .map_err(|error| AppError::Internal(error.into()))?;
        receive_body(payload, gzip, kind, rules).await?
    };
    let organization_id = caller.organization_id.clone();
    let pool = state.write_pool.clone();
    let stored = web::block(move || -> Result<Stored<RunView>, AppError> {
        let mut conn = pool.get()?;
        let stored = store_push(
            &mut conn,
            &organization_id,
            &received,
            idempotency_key.as_deref(),
        )
        .map_err(rejection)?;
        Ok(match stored {
            Stored::Created(run) => {
                tracing::info!(run_id = %run.id, records = run.progress_total, content_type = %run.content_type, "push stored");
                Stored::Created(RunView::read(&mut conn, run)?)
            }
            Stored::Replayed(run) => Stored::Replayed(RunView::read(&mut conn, run)?),
            Stored::KeyReused => Stored::KeyReused,
        })
    })
    .await??;
    match stored {
        Stored::Created(run) => {
            state.waker.wake();
            Ok(HttpResponse::Accepted()
                .insert_header((header::LOCATION, format!("/v1/syncs/{}", run.id)))
                .json(run))
        }
        Stored::Replayed(run) => Ok(HttpResponse::Ok()
            .insert_header((header::LOCATION, format!("/v1/syncs/{}", run.id)))
            .json(run)),
        Stored::KeyReused => Err(AppError::unprocessable(
            "This Idempotency-Key was already used with a different request body; use a new key for a new push.",
            Vec::new(),
        )),
    }
}

/// Backpressure: refuses a push (429, nothing stored) while the queue holds more than the
/// limits allow, for the organization or for all of them. An Idempotency-Key replay is refused
/// too while the queue is full; its client retries after `Retry-After` like any other.
fn check_queue_room(
    conn: &mut crate::store::DbConn,
    organization_id: &str,
    limits: &QueueLimits,
) -> Result<(), AppError> {
    let load = runs::pending_load(conn, organization_id)?;
    let over = |value: i64, limit: u64| u64::try_from(value).unwrap_or(0) >= limit;
    let detail = if over(
        load.organization_runs,
        u64::from(limits.runs_per_organization),
    ) {
        format!("This organization already has {} runs waiting (the limit is {}); retry after Retry-After seconds, or ask the operator to raise --max-pending-runs-per-org. Nothing was stored.", load.organization_runs, limits.runs_per_organization)
    } else if over(load.organization_records, limits.records_per_organization) {
        format!("This organization's waiting runs already carry {} records (the limit is {}); retry after Retry-After seconds, or ask the operator to raise --max-pending-records-per-org. Nothing was stored.", load.organization_records, limits.records_per_organization)
    } else if over(load.runs, u64::from(limits.runs)) {
        format!("The service already has {} runs waiting (the limit is {}); retry after Retry-After seconds. Nothing was stored.", load.runs, limits.runs)
    } else if over(load.records, limits.records) {
        format!("The service's waiting runs already carry {} records (the limit is {}); retry after Retry-After seconds. Nothing was stored.", load.records, limits.records)
    } else {
        return Ok(());
    };
    Err(AppError::TooManyRequests(detail))
}

/// Why a push was refused, as the client reads it.
fn rejection(rejected: PushRejected) -> AppError {
    match rejected {
        PushRejected::Malformed(errors) => AppError::unprocessable(
            "The push is not a well-formed sync request; nothing was stored.",
            errors,
        ),
        PushRejected::Parameters(errors) => {
            AppError::bad_request(format!("{} Nothing was stored.", errors.join(" ")))
        }
        // The file-level sentence is the whole answer: it names what to fix in the file.
        PushRejected::File(reason) => AppError::unprocessable(reason, Vec::new()),
        PushRejected::TooLarge { limit } => too_large(limit),
        PushRejected::Unreadable {
            reason,
            transport: true,
        } => AppError::bad_request(format!(
            "The body could not be read ({reason}); nothing was stored."
        )),
        PushRejected::Unreadable {
            reason,
            transport: false,
        } => AppError::bad_request(format!(
            "The body is not valid gzip ({reason}); nothing was stored."
        )),
        PushRejected::Spool(error) if error.kind() == std::io::ErrorKind::StorageFull => {
            AppError::InsufficientStorage(
                "The server has no disk space left to receive the push; nothing was stored. Retry later.".into(),
            )
        }
        PushRejected::Spool(error) => AppError::Internal(
            anyhow::Error::new(error).context("cannot spool the push's body"),
        ),
        PushRejected::Store(error) => AppError::from(error),
    }
}

/// True for `Content-Encoding: gzip`; 415 for an encoding this service cannot decode.
fn is_gzip(req: &HttpRequest) -> Result<bool, AppError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let encoding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "" | "identity" => Ok(false),
        other => Err(AppError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported; send the body as it is, or gzip it."
        ))),
    }
}

/// The query parameters of a CSV upload. A JSON push carries them in its body: given in
/// the query too, they would be silently ignored, so they are refused.
fn upload_params(req: &HttpRequest, format: Format) -> Result<UploadParams, AppError> {
    #[derive(Deserialize)]
    struct Raw {
        source: Option<String>,
        mode: Option<String>,
        dry_run: Option<String>,
    }
    let raw = web::Query::<Raw>::from_query(req.query_string())
        .map_err(|error| AppError::bad_request(format!("The query string is not valid: {error}.")))?
        .into_inner();
    let params = UploadParams {
        source: raw.source,
        mode: raw.mode,
        dry_run: raw.dry_run,
    };
    if format == Format::Json && params != UploadParams::default() {
        return Err(AppError::bad_request(
            "source, mode and dry_run are query parameters of CSV uploads only; a JSON push gives them in its body. Nothing was stored.",
        ));
    }
    Ok(params)
}

/// The 413 answer, naming the setting that raises the limit.
fn too_large(limit: u64) -> AppError {
    AppError::PayloadTooLarge(format!(
        "The body is over the limit of {limit} bytes (for a gzip body: once decompressed); nothing was stored. Split the push, or ask the operator to raise --max-body-bytes (HRIS_SYNC_MAX_BODY_BYTES)."
    ))
}

/// A body announced larger than the limit is refused before it is read.
fn refuse_announced_oversize(req: &HttpRequest, limit: u64) -> Result<(), AppError> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Pieces of body in flight between the network and the thread that checks and spools them.
const BODY_PIECES_IN_FLIGHT: usize = 8;
/// A body that sends nothing for this long is given up.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Receives a push's body: the network side forwards each piece as it arrives to a blocking
/// thread that decompresses, checks and spools it (`sync::push::receive`). The body is never
/// whole in memory; a piece waits while the thread is busy, which slows the client down.
async fn receive_body(
    mut payload: web::Payload,
    gzip: bool,
    kind: PushKind,
    rules: BodyRules,
) -> Result<ReceivedPush, AppError> {
    let (pieces, arriving) = tokio::sync::mpsc::channel(BODY_PIECES_IN_FLIGHT);
    let received = web::block(move || {
        let network = NetworkBody {
            arriving,
            piece: web::Bytes::new(),
        };
        let body: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(network))
        } else {
            Box::new(network)
        };
        receive(&kind, body, &rules)
    });
    loop {
        let piece = match tokio::time::timeout(BODY_IDLE_TIMEOUT, payload.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(piece))) => Ok(piece),
            Ok(Some(Err(error))) => Err(error.to_string()),
            Err(_) => Err(format!(
                "no data came for {} seconds",
                BODY_IDLE_TIMEOUT.as_secs()
            )),
        };
        let failed = piece.is_err();
        // The thread stops reading as soon as it refuses the push (too large, not UTF-8; a JSON
        // body that is not valid JSON is read to its end): its answer says why.
        if pieces.send(piece).await.is_err() || failed {
            break;
        }
    }
    drop(pieces);
    received.await?.map_err(rejection)
}

/// The body as the receiving thread reads it, piece by piece from the network.
struct NetworkBody {
    arriving: tokio::sync::mpsc::Receiver<Result<web::Bytes, String>>,
    piece: web::Bytes,
}

impl Read for NetworkBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.arriving.blocking_recv() {
                Some(Ok(piece)) => self.piece = piece,
                Some(Err(reason)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        reason,
                    ))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// The media type of the request, lowercased, without parameters.
fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Filters of the run list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListParams {
    /// Only runs in this status.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub status: Option<RunStatus>,
    /// Exact source name.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub source: Option<String>,
    /// Runs created at or after this time (RFC 3339, or a date YYYY-MM-DD meaning its start, UTC).
    #[param(schema_with = time_filter_schema)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub since: Option<String>,
    /// Runs created before this time (RFC 3339, or a date YYYY-MM-DD meaning its start, UTC).
    #[param(schema_with = time_filter_schema)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub until: Option<String>,
}

page_schema!(
    /// A page of runs, newest first.
    RunPage,
    RunView
);

/// A time filter: an RFC 3339 time with any offset, or a date (its midnight, UTC).
pub fn time_filter_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    AnyOfBuilder::new()
        .description(Some(
            "An RFC 3339 time with any offset (2026-11-25T09:00:00Z), or a date (2026-11-25) \
meaning its midnight, UTC.",
        ))
        .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
            utoipa::openapi::SchemaFormat::Custom("date-time".into()),
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("date".into()))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0))
                .description(Some("Empty: the filter is not set.")),
        )
        .into()
}

/// List runs, newest first
///
/// Filters combine; an empty value (`?status=`) means the filter is not set.
#[utoipa::path(
    operation_id = "listSyncRuns",
    tag = "syncs",
    params(RunListParams, PageParams),
    responses(
        (status = 200, description = "A page of runs.", body = RunPage),
        (status = 400, description = "A filter, limit or cursor is not valid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/syncs")]
pub async fn list(
    caller: ReadAccess,
    filter: web::Query<RunListParams>,
    page: web::Query<PageParams>,
    state: web::Data<AppState>,
) -> Result<web::Json<Page<RunView>>, AppError> {
    let limit = page.limit()?;
    let before = page.id_position("runs")?;
    let filter = RunFilter {
        status: filter.status,
        source: filter.source.clone(),
        since: filter
            .since
            .as_deref()
            .map(|t| instant("since", t))
            .transpose()?,
        until: filter
            .until
            .as_deref()
            .map(|t| instant("until", t))
            .transpose()?,
    };
    let pool = state.pool.clone();
    let views = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let rows = runs::list(
            &mut conn,
            &caller.organization_id,
            &filter,
            before.as_deref(),
            limit + 1,
        )?;
        RunView::read_page(&mut conn, &caller.organization_id, rows)
    })
    .await??;
    Ok(web::Json(Page::from_rows(
        views,
        limit,
        "runs",
        |view| view.id.clone(),
        |view| view,
    )))
}

/// A time filter in stored form: RFC 3339 with any offset, or a plain date (its midnight, UTC).
pub fn instant(name: &str, text: &str) -> Result<String, AppError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(timestamp(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if text.len() == 10 {
            return Ok(timestamp(
                day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            ));
        }
    }
    Err(AppError::bad_request(format!(
        "{name} must be an RFC 3339 time (2026-11-25T09:00:00Z) or a date (2026-11-25), got {text:?}."
    )))
}

/// Read a run
///
/// The run's status, counts, issue totals and progress: poll it after a push until
/// `finished_at` is set.
#[utoipa::path(
    operation_id = "getSyncRun",
    tag = "syncs",
    params(("id" = String, Path, format = "uuid", description = "The run id.")),
    responses(
        (status = 200, description = "The run.", body = RunView),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/syncs/{id}")]
pub async fn get(
    caller: ReadAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<RunView>, AppError> {
    let id = id.into_inner();
    let view = point_read(&state.pool, move |conn| {
        let run = find_run(conn, &caller.organization_id, &id)?;
        RunView::read(conn, run)
    })
    .await?;
    Ok(web::Json(view))
}

/// Run a stored push again
///
/// Queues a new run of the same push (body, mode, source, dry-run flag) against the directory
/// as it is now, e.g. after fixing the issues a run reported. The new run names the original
/// in `retry_of`.
#[utoipa::path(
    operation_id = "retrySyncRun",
    tag = "syncs",
    params(("id" = String, Path, format = "uuid", description = "The run to run again.")),
    responses(
        (status = 202, description = "The new run is queued.", body = RunView,
            headers(("Location" = String, description = "The new run's URL"))),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the sync:write scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has not finished yet.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/syncs/{id}/retry")]
pub async fn retry(
    caller: WriteAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let pool = state.write_pool.clone();
    let run = web::block(move || -> Result<RunView, AppError> {
        let mut conn = pool.get()?;
        let original = find_run(&mut conn, &caller.organization_id, &id)?;
        let run = lifecycle::retry(&mut conn, &original).map_err(|error| match error {
            LifecycleError::Refused { current, .. } => AppError::Conflict(format!(
                "The run {id} is {}; retry it once it has finished.",
                current.map_or("gone", RunStatus::as_str)
            )),
            LifecycleError::Store(error) => AppError::from(error),
        })?;
        RunView::read(&mut conn, run)
    })
    .await??;
    state.waker.wake();
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/v1/syncs/{}", run.id)))
        .json(run))
}

/// The run of the organization, or a 404 that does not tell whether it exists elsewhere.
pub fn find_run(
    conn: &mut crate::store::DbConn,
    organization_id: &str,
    id: &str,
) -> Result<RunRow, AppError> {
    runs::find(conn, organization_id, id)?.ok_or_else(|| {
        AppError::NotFound(format!("There is no sync run {id:?} in this organization."))
    })
}
