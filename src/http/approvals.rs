//! The approval gate's decisions: approve or reject a run awaiting approval.
//!
//! Approval applies the run within the request (on a blocking thread): the answer is the run
//! after the decision, `approved` (or `failed` when applying it failed, nothing applied).
//! Either decision releases the runs of the organization queued behind it.

use actix_web::{post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{check_text, RunStatus, TextProblem};
use crate::error::{AppError, FieldError, Problem};
use crate::http::auth::AdminAccess;
use crate::http::syncs::{find_run, RunView};
use crate::http::AppState;
use crate::store::{tokens, DbConn};
use crate::sync::engine::{approve_run, refused_status};
use crate::sync::lifecycle::{self, Decision, LifecycleError};

/// Longest accepted reason.
const MAX_REASON_CHARS: usize = 1000;

/// The optional body of an approval or a rejection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Reorganisation of the sales team, checked with HR."}))]
pub struct DecisionBody {
    /// Why; kept on the run (`decision_reason`). At most 1000 characters.
    #[schema(
        example = "Reorganisation of the sales team, checked with HR.",
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// The reason of an optional JSON body: an empty body, or JSON `null` (what the document's
/// nullable body lets a generated client send), is no reason.
fn reason(body: &[u8]) -> Result<Option<String>, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: Option<DecisionBody> = serde_json::from_slice(body).map_err(|error| {
        AppError::unprocessable(
            "The body must be empty, null or a JSON object {\"reason\": \"…\"}.",
            vec![FieldError::new("", error.to_string())],
        )
    })?;
    let Some(reason) = parsed
        .and_then(|body| body.reason)
        .map(|r| r.trim().to_owned())
    else {
        return Ok(None);
    };
    if let Err(problem) = check_text(&reason, MAX_REASON_CHARS) {
        let detail = match problem {
            TextProblem::TooLong { .. } => format!("At most {MAX_REASON_CHARS} characters."),
            TextProblem::ControlCharacter => "No control characters (line breaks, tabs…).".into(),
        };
        return Err(AppError::unprocessable(
            "The reason is not valid; nothing was decided.",
            vec![FieldError::new("/reason", detail)],
        ));
    }
    Ok((!reason.is_empty()).then_some(reason))
}

fn not_awaiting(id: &str, status: Option<RunStatus>, verb: &str) -> AppError {
    AppError::Conflict(format!(
        "The run {id} is {}; only a run awaiting approval can be {verb}.",
        status.map_or("gone", RunStatus::as_str)
    ))
}

/// The run, if it awaits approval in the caller's organization.
fn awaiting_run(
    conn: &mut DbConn,
    organization_id: &str,
    id: &str,
    verb: &str,
) -> Result<crate::store::models::RunRow, AppError> {
    let run = find_run(conn, organization_id, id)?;
    if run.status != RunStatus::AwaitingApproval {
        return Err(not_awaiting(id, Some(run.status), verb));
    }
    Ok(run)
}

/// Approve a run awaiting approval
///
/// Applies the run: it is planned again from its stored push against the directory as it is
/// now (its report is replaced by the new plan's, which differs from the planned one if the
/// directory changed meanwhile) and the approval limits are not checked again. Answers with
/// the run, now `approved` with `finished_at`, its counts, `decided_by` and
/// `decision_reason` — or `failed` if applying it failed (nothing is then applied).
#[utoipa::path(
    tag = "syncs",
    operation_id = "approveSyncRun",
    params(("id" = String, Path, format = "uuid", description = "The run awaiting approval.")),
    request_body(content = Option<DecisionBody>, content_type = "application/json", description = "Optional: why. An empty body or `null` gives no reason."),
    responses(
        (status = 200, description = "The run after the decision.", body = RunView),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not awaiting approval; the detail names its status.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not {\"reason\": \"…\"}.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/syncs/{id}/approve")]
pub async fn approve(
    caller: AdminAccess,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<web::Json<RunView>, AppError> {
    let id = id.into_inner();
    let reason = reason(&body)?;
    let pool = state.write_pool.clone();
    let hooks = state.test_hooks.clone();
    let run = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let run = awaiting_run(&mut conn, &caller.organization_id, &id, "approved")?;
        let by = tokens::name(&mut conn, &caller.token_id)?;
        let decision = Decision {
            by: &by,
            reason: reason.as_deref(),
        };
        let span = tracing::info_span!("approve_run", run_id = %run.id);
        let _entered = span.enter();
        if let Err(error) = approve_run(&mut conn, &run, decision, &hooks) {
            return Err(match refused_status(&error) {
                Some(current) => not_awaiting(&id, current, "approved"),
                None => AppError::from(error),
            });
        }
        find_run(&mut conn, &caller.organization_id, &id)
    })
    .await??;
    state.waker.wake();
    Ok(web::Json(RunView::from(run)))
}

/// Reject a run awaiting approval
///
/// Ends the run `rejected`: nothing of it is applied. Its report stays readable as what it
/// would have done.
#[utoipa::path(
    tag = "syncs",
    operation_id = "rejectSyncRun",
    params(("id" = String, Path, format = "uuid", description = "The run awaiting approval.")),
    request_body(content = Option<DecisionBody>, content_type = "application/json", description = "Optional: why. An empty body or `null` gives no reason."),
    responses(
        (status = 200, description = "The run after the decision.", body = RunView),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not awaiting approval; the detail names its status.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not {\"reason\": \"…\"}.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/syncs/{id}/reject")]
pub async fn reject(
    caller: AdminAccess,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<web::Json<RunView>, AppError> {
    let id = id.into_inner();
    let reason = reason(&body)?;
    let pool = state.write_pool.clone();
    let run = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        awaiting_run(&mut conn, &caller.organization_id, &id, "rejected")?;
        let by = tokens::name(&mut conn, &caller.token_id)?;
        let decision = Decision {
            by: &by,
            reason: reason.as_deref(),
        };
        lifecycle::reject(&mut conn, &id, &decision).map_err(|error| match error {
            LifecycleError::Refused { current, .. } => not_awaiting(&id, current, "rejected"),
            LifecycleError::Store(error) => AppError::from(error),
        })?;
        find_run(&mut conn, &caller.organization_id, &id)
    })
    .await??;
    state.waker.wake();
    Ok(web::Json(RunView::from(run)))
}
