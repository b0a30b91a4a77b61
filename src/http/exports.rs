//! Downloads: a run's report CSV and JSON log, the period sync log (CSV, XLSX), and a ZIP
//! of several runs. The handlers check the request and the runs, then stream what a writer
//! of `crate::export` produces on a blocking thread (see `export::stream`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::RunStatus;
use crate::error::{AppError, Problem};
use crate::export::log_json::RunLog;
use crate::export::stream::stream_blocking;
use crate::export::sync_log::Period;
use crate::export::{self, DbSource};
use crate::http::auth::ReadAccess;
use crate::http::syncs::{find_run, instant, time_filter_schema};
use crate::http::AppState;
use crate::store::events;
use crate::store::models::RunRow;

const CSV: &str = "text/csv; charset=utf-8";
const JSON: &str = "application/json";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const ZIP: &str = "application/zip";

/// An example of `report.csv` (one update of two fields, one issue), for the OpenAPI document.
const REPORT_CSV_EXAMPLE: &str = "\u{feff}run_id,seq,kind,entity,action,code,severity,field,old,new,message,row,external_id,email,first_name,last_name,user_id,team\n\
0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,1,update,user,USER_UPDATED,,,teams,Research,Research|Engineering,,2,E1043,grace.hopper@example.com,Grace,Hopper,0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f,\n\
0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,1,update,user,USER_UPDATED,,,manager_external_id,E1042,,,2,E1043,grace.hopper@example.com,Grace,Hopper,0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f,\n\
0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,2,issue,user,,DATE_OF_BIRTH_IS_MISSING_OR_INVALID,error,date_of_birth,,,\"\"\"1912-06-23\"\" is not a real date of the form MM/DD/YYYY, e.g. 07/14/1990\",3,E1044,katherine.johnson@example.com,Katherine,Johnson,,\n";

/// An example of the period sync log as CSV, for the OpenAPI document.
const SYNC_LOG_CSV_EXAMPLE: &str = "\u{feff}section,time,run_id,action,code,severity,person,email,external_id,team,field,old,new,message,remediation\n\
Employee updates,2026-11-25T09:00:01.450000Z,0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,USER_UPDATED,,,Grace Hopper,grace.hopper@example.com,E1043,,teams,Research,Research|Engineering,,\n\
Errors,2026-11-25T09:00:01.450000Z,0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,,MANAGER_DOES_NOT_EXIST,error,Katherine Johnson,katherine.johnson@example.com,E1044,,manager_external_id,,,\"The manager (manager_external_id) is neither in this push nor in the directory, or their own record was skipped. A user is only created once their manager exists, so the record was skipped.\",\"1. Check the manager's employee ID on this employee's profile in your HR tool, and that the manager is included in the sync.\n2. Run the sync again.\"\n";

/// The bytes of a downloaded file (XLSX, ZIP), for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// Seconds a client should wait before asking again for the export of a run in progress.
const RETRY_AFTER_SECONDS: u32 = 5;

/// Runs ready to export, or the 409 to answer because one is still queued or running.
enum Exportable {
    Ready(Vec<RunRow>),
    InProgress(HttpResponse),
}

/// A 409 problem with `Retry-After`: the run's events are not all written yet.
fn in_progress(run: &RunRow, status: RunStatus) -> HttpResponse {
    let mut response = AppError::Conflict(format!(
        "The run {} is {status}: its exports are ready when it ends. Its events can be read meanwhile (GET /v1/syncs/{}/events).",
        run.id, run.id
    ))
    .error_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// Loads the organization's runs (404 for any that it does not have) and checks that none
/// is pending or running. Every other status exports, `awaiting_approval` included.
async fn exportable(
    state: &web::Data<AppState>,
    caller: &ReadAccess,
    ids: Vec<String>,
) -> Result<Exportable, AppError> {
    let pool = state.pool.clone();
    let organization_id = caller.organization_id.clone();
    let runs = web::block(move || -> Result<Vec<RunRow>, AppError> {
        let mut conn = pool.get()?;
        ids.iter()
            .map(|id| find_run(&mut conn, &organization_id, id))
            .collect()
    })
    .await??;
    for run in &runs {
        let status = run.status;
        if matches!(status, RunStatus::Pending | RunStatus::Running) {
            return Ok(Exportable::InProgress(in_progress(run, status)));
        }
    }
    Ok(Exportable::Ready(runs))
}

/// A streamed file download.
fn download<S>(content_type: &'static str, file_name: &str, body: S) -> HttpResponse
where
    S: futures_util::Stream<Item = std::io::Result<web::Bytes>> + 'static,
{
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

/// Download a run's full report as CSV
///
/// Every update and every issue of the run, whatever filter `GET /v1/syncs/{id}/events` was
/// read with: one line per event, and one line per changed field of an update (`old` and
/// `new` as text, lists joined with `|`). Columns: `run_id, seq, kind, entity, action, code,
/// severity, field, old, new, message, row, external_id, email, first_name, last_name,
/// user_id, team`. UTF-8 with a byte order mark. Cells that begin with `=`, `+`, `-`, `@`, a
/// tab or a carriage return get a `'` in front, so that no spreadsheet program runs them as
/// formulas.
#[utoipa::path(
    operation_id = "getSyncRunReportCsv",
    tag = "syncs",
    params(("id" = String, Path, format = "uuid", description = "The run id.")),
    responses(
        (status = 200, description = "The report, streamed.", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"sync-<id>-report.csv\"`")),
            example = json!(REPORT_CSV_EXAMPLE)),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is pending or running; its events can already be read.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again."))),
    )
)]
#[get("/syncs/{id}/report.csv")]
pub async fn report_csv(
    caller: ReadAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let run = match exportable(&state, &caller, vec![id.into_inner()]).await? {
        Exportable::Ready(mut runs) => runs.remove(0),
        Exportable::InProgress(response) => return Ok(response),
    };
    let file_name = format!("sync-{}-report.csv", run.id);
    let source = DbSource {
        pool: state.pool.clone(),
    };
    let body = stream_blocking("report.csv", move |out| {
        export::report_csv::write(&source, &run.id, out)
    });
    Ok(download(CSV, &file_name, body))
}

/// Download a run's log as JSON
///
/// The run's log in the shape HRIS connectors use: start and end, an overall `status`
/// (`success`, `warning` or `error`), `logs` when the run failed, the counts, and the lists
/// of duplicate, ignored and no-group-match users. Duplicate users are records skipped with
/// `DUPLICATE_EXTERNAL_ID` or `USER_DUPLICATE_EMAIL`; ignored users are the other records that
/// were not applied (skipped on any other error, or left alone with
/// `RESCINDED_HIRE_NOT_CREATED` or `TERMINATED_USER_NOT_CREATED`); no-group-match users carry
/// a `NO_GROUP_MATCH` warning.
#[utoipa::path(
    operation_id = "getSyncRunLogJson",
    tag = "syncs",
    params(("id" = String, Path, format = "uuid", description = "The run id.")),
    responses(
        (status = 200, description = "The log, streamed.", content_type = "application/json", body = RunLog,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"sync-<id>-log.json\"`"))),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is pending or running; its events can already be read.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again."))),
    )
)]
#[get("/syncs/{id}/log.json")]
pub async fn log_json(
    caller: ReadAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let run = match exportable(&state, &caller, vec![id.into_inner()]).await? {
        Exportable::Ready(mut runs) => runs.remove(0),
        Exportable::InProgress(response) => return Ok(response),
    };
    let file_name = format!("sync-{}-log.json", run.id);
    let source = DbSource {
        pool: state.pool.clone(),
    };
    let body = stream_blocking("log.json", move |out| {
        export::log_json::write(&source, &run, out)
    });
    Ok(download(JSON, &file_name, body))
}

/// The period of a sync log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// Start, inclusive (RFC 3339, or a date YYYY-MM-DD meaning its start, UTC). Default:
    /// 30 days before `until`.
    #[param(schema_with = time_filter_schema)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub since: Option<String>,
    /// End, exclusive (RFC 3339 or a date). Default: now. At most 366 days after `since`.
    #[param(schema_with = time_filter_schema)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub until: Option<String>,
}

impl PeriodParams {
    fn period(&self) -> Result<Period, AppError> {
        let parse =
            |name: &str, text: &Option<String>| -> Result<Option<DateTime<Utc>>, AppError> {
                text.as_deref()
                    .map(|t| {
                        let stored = instant(name, t)?;
                        DateTime::parse_from_rfc3339(&stored)
                            .map(|at| at.with_timezone(&Utc))
                            .map_err(|_| AppError::bad_request(format!("{name} is not a time.")))
                    })
                    .transpose()
            };
        Period::resolve(
            parse("since", &self.since)?,
            parse("until", &self.until)?,
            Utc::now(),
        )
        .map_err(AppError::bad_request)
    }
}

/// The organization's applied runs of the period.
async fn period_runs(
    state: &web::Data<AppState>,
    caller: &ReadAccess,
    period: Period,
) -> Result<Vec<events::PeriodRun>, AppError> {
    let pool = state.pool.clone();
    let organization_id = caller.organization_id.clone();
    web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        Ok(events::applied_runs_in_period(
            &mut conn,
            &organization_id,
            &crate::store::timestamp(period.since),
            &crate::store::timestamp(period.until),
        )?)
    })
    .await?
}

/// Download the sync log of a period as CSV
///
/// What the organization's runs created in the period (`since` inclusive, `until` exclusive;
/// default the last 30 days, at most 366 days) did to the directory: the runs that were
/// applied, not dry runs nor runs awaiting approval, rejected or failed. Two parts, told apart
/// by the first column, `section`: `Employee updates` (one line per changed field) then
/// `Errors` (every issue, with its numbered remediation steps). Columns: `section, time,
/// run_id, action, code, severity, person, email, external_id, team, field, old, new,
/// message, remediation`; `time` is the end of the run (RFC 3339, UTC). UTF-8 with a byte
/// order mark; formula-like cells are neutralised as in `report.csv`.
#[utoipa::path(
    operation_id = "getSyncLogCsv",
    tag = "syncs",
    params(PeriodParams),
    responses(
        (status = 200, description = "The sync log, streamed.", content_type = "text/csv", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"sync-log-<since>-<until>.csv\"`")),
            example = json!(SYNC_LOG_CSV_EXAMPLE)),
        (status = 400, description = "since or until is not a time, or the period is backwards or longer than 366 days.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/sync-log.csv")]
pub async fn sync_log_csv(
    caller: ReadAccess,
    params: web::Query<PeriodParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let period = params.period()?;
    let runs = period_runs(&state, &caller, period).await?;
    let source = DbSource {
        pool: state.pool.clone(),
    };
    let body = stream_blocking("sync-log.csv", move |out| {
        export::sync_log::write_csv(&source, &runs, out)
    });
    Ok(download(CSV, &period.file_name("csv"), body))
}

/// Download the sync log of a period as an XLSX workbook
///
/// The period sync log of `GET /v1/sync-log.csv` as a spreadsheet with two sheets,
/// `Employee updates` (time, run_id, action, person, email, external_id, team, field, old,
/// new) and `Errors` (time, run_id, code, severity, person, email, external_id, team, field,
/// message, remediation): bold frozen header row, autofilter, readable column widths, times
/// as real date-times (UTC).
#[utoipa::path(
    operation_id = "getSyncLogXlsx",
    tag = "syncs",
    params(PeriodParams),
    responses(
        (status = 200, description = "The workbook, streamed.", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = FileBytes,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"sync-log-<since>-<until>.xlsx\"`"))),
        (status = 400, description = "since or until is not a time, or the period is backwards or longer than 366 days.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/sync-log.xlsx")]
pub async fn sync_log_xlsx(
    caller: ReadAccess,
    params: web::Query<PeriodParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let period = params.period()?;
    let runs = period_runs(&state, &caller, period).await?;
    let source = DbSource {
        pool: state.pool.clone(),
    };
    let body = stream_blocking("sync-log.xlsx", move |out| {
        export::sync_log::write_xlsx(&source, &runs, out)
    });
    Ok(download(XLSX, &period.file_name("xlsx"), body))
}

/// The runs of a ZIP export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZipParams {
    /// 1 to 50 run ids, separated by commas (a repeated id counts once).
    #[param(
        example = "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e,0193a6d2-2b1f-7c3d-8e4f-6a7b8c9d0e1f",
        min_length = 1,
        max_length = 1849,
        pattern = "^[0-9A-Fa-f-]{1,36}(,[0-9A-Fa-f-]{1,36}){0,49}$"
    )]
    pub ids: String,
}

impl ZipParams {
    /// The ids, in the order given, each once.
    fn ids(&self) -> Result<Vec<String>, AppError> {
        let mut ids: Vec<String> = Vec::new();
        for id in self
            .ids
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
        {
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
        if ids.is_empty() || ids.len() > export::zip::MAX_RUNS {
            return Err(AppError::bad_request(format!(
                "ids must name 1 to {} runs, separated by commas; got {}.",
                export::zip::MAX_RUNS,
                ids.len()
            )));
        }
        Ok(ids)
    }
}

/// Download several runs' logs as a ZIP
///
/// One folder per run, `sync-<id>/`, holding its `log.json` and `report.csv` (as
/// `GET /v1/syncs/{id}/log.json` and `GET /v1/syncs/{id}/report.csv` serve them). Streamed as
/// it is compressed.
#[utoipa::path(
    operation_id = "exportSyncRuns",
    tag = "syncs",
    params(ZipParams),
    responses(
        (status = 200, description = "The archive, streamed.", content_type = "application/zip", body = FileBytes,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"sync-runs-<time>.zip\"`"))),
        (status = 400, description = "ids is missing, empty, or names more than 50 runs.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "One of the runs does not exist in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "One of the runs is pending or running.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again."))),
    )
)]
#[get("/syncs/export.zip")]
pub async fn export_zip(
    caller: ReadAccess,
    params: web::Query<ZipParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let ids = params.ids()?;
    let runs = match exportable(&state, &caller, ids).await? {
        Exportable::Ready(runs) => runs,
        Exportable::InProgress(response) => return Ok(response),
    };
    let file_name = format!("sync-runs-{}.zip", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let source = DbSource {
        pool: state.pool.clone(),
    };
    let pool = state.pool.clone();
    let body = stream_blocking("export.zip", move |out| {
        let csv_log = |run: &RunRow, out: &mut dyn std::io::Write| -> anyhow::Result<()> {
            let mut conn = pool.get()?;
            crate::sync::csv_log::write_csv_log(&mut conn, run, out)
                .map_err(|error| anyhow::anyhow!("the CSV log of run {}: {error}", run.id))
        };
        export::zip::write(&source, &runs, &csv_log, out)
    });
    Ok(download(ZIP, &file_name, body))
}
