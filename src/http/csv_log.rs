//! `GET /v1/syncs/{id}/log.csv`: the uploaded file with a status per line, streamed.

use std::io::Write;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse, ResponseError as _};
use tokio::sync::mpsc;

use crate::error::{AppError, Problem};
use crate::http::auth::ReadAccess;
use crate::http::syncs::find_run;
use crate::http::AppState;
use crate::sync::csv_log::{CsvLog, CsvLogError};

/// Seconds a client is told to wait before asking again for the log of an unfinished run.
const RETRY_AFTER_SECONDS: &str = "2";
/// Bytes per chunk sent to the client, and chunks buffered ahead of a slow client.
const CHUNK_BYTES: usize = 64 * 1024;
const CHUNKS_AHEAD: usize = 8;

/// Download the CSV log of an uploaded file
///
/// The file as it was uploaded — same delimiter, columns, order and values — with two columns
/// in front: `ImportStatus` and `ImportDetail` (the line's issue codes and messages,
/// `; `-separated). Users archived because the full file did not list them follow at the end,
/// as `UserArchived` lines. Only for CSV uploads; streamed.
///
/// `ImportStatus` from the line's events:
/// 1. a skipped record (an error): `Error` for `CSV_LINE_UNREADABLE`; `DuplicateUser` for
///    `DUPLICATE_EXTERNAL_ID` or `USER_DUPLICATE_EMAIL`; `CustomFieldSyncIssue` when every error
///    is a `CUSTOM_FIELD_*` code; `CreationIssue` for an error of the `directory` category
///    (`USER_EXISTS_IN_INVITED_STATE`, `EMAIL_USED_BY_ARCHIVED_USER`, a seat limit…);
///    `InvalidUser` for any other error (a field, the approval flow);
/// 2. a record applied with a warning: `CustomFieldSyncIssue` for a `CUSTOM_FIELD_*` code,
///    `NoGroupsMatch` for `NO_GROUP_MATCH`;
/// 3. otherwise what was done: `UserCreated`, `UserReactivated`, `UserArchived`,
///    `UserUpdated` (fields, manager or teams), `NoActionDone` (unchanged, a rescinded hire, a
///    blank line).
///
/// A failed run applied nothing: every line is `Error` with the reason. A rejected run: every
/// line is `NoActionDone`. A dry run's statuses say what a real run would do.
#[utoipa::path(
    tag = "syncs",
    operation_id = "getSyncRunLogCsv",
    params(("id" = String, Path, format = "uuid", description = "The run id.")),
    responses(
        (status = 200, description = "The uploaded file with ImportStatus and ImportDetail in front of each line.",
            body = String, content_type = "text/csv",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"sync-<id>-log.csv\"")),
            example = json!("ImportStatus,ImportDetail,external_id,email,first_name,last_name,start_date\r\nUserCreated,,E1042,ada.lovelace@example.com,Ada,Lovelace,2024-03-01\r\nInvalidUser,MISSING_START_DATE: An active employee needs a start_date (YYYY-MM-DD).,E1043,jean.dupont@example.com,Jean,Dupont,\r\nUserArchived,The user was archived: the full file does not list them.,E0007,old.timer@example.com,Old,Timer,\r\n")),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization, or the run is a JSON push: log.csv exists only for CSV uploads.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has not finished yet; ask again after Retry-After seconds.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
    )
)]
#[get("/syncs/{id}/log.csv")]
pub async fn get_log_csv(
    caller: ReadAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let pool = state.pool.clone();
    let run_id = id.clone();
    let loaded = web::block(move || -> Result<Result<CsvLog, CsvLogError>, AppError> {
        let mut conn = pool.get()?;
        let run = find_run(&mut conn, &caller.organization_id, &run_id)?;
        Ok(CsvLog::load(&mut conn, &run))
    })
    .await??;
    let log = match loaded {
        Ok(log) => log,
        Err(CsvLogError::NotCsv) => {
            return Err(AppError::NotFound(format!(
                "The run {id} is a JSON push: log.csv exists only for CSV uploads. Read its report with GET /v1/syncs/{id}/events."
            )))
        }
        Err(CsvLogError::NotFinished(status)) => {
            let mut response = AppError::Conflict(format!(
                "The run {id} is {status}: its log.csv exists once it has finished."
            ))
            .error_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            return Ok(response);
        }
        Err(CsvLogError::Store(error)) => return Err(error.into()),
        Err(CsvLogError::Io(error)) => {
            return Err(AppError::Internal(
                anyhow::Error::new(error).context("reading the stored file"),
            ))
        }
    };

    // The log is written off the executor, into a bounded channel: a slow client slows the
    // writer down instead of making it buffer the whole file.
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    let run_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        };
        let written = log.write(&mut out).and_then(|()| out.flush());
        if let Err(error) = written {
            // Almost always the client going away; the stream is cut either way.
            tracing::info!(%error, run_id = %run_id, "log.csv was not sent to the end");
            let _ = out.sender.blocking_send(Err(error));
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"sync-{id}-log.csv\""),
        ))
        .streaming(body))
}

/// Sends what is written to the response in chunks; fails once the response is gone.
struct ChannelWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}
