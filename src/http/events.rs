//! The report of a run: its updates and issues, filtered and paginated.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::catalogue::IssueCode;
use crate::domain::{EntityKind, EventKind, Severity, UpdateAction};
use crate::error::{AppError, Problem};
use crate::http::auth::ReadAccess;
use crate::http::pagination::{page_schema, Page, PageParams};
use crate::http::syncs::find_run;
use crate::http::AppState;
use crate::store::events::{self, EventFilter};
use crate::store::models::EventRow;
use crate::sync::lifecycle::report_is_planned;

/// A line of a run's report: an update applied (or planned, for a dry run) or an issue.
/// Every field is always present: those that do not apply to the line's `kind` are `null`
/// (`action` for issues; `code`, `severity`, `field`, `message` and `help` for updates).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "seq": 3, "kind": "issue", "entity": "user", "action": null,
    "code": "DATE_OF_BIRTH_IS_MISSING_OR_INVALID", "severity": "error", "field": "date_of_birth",
    "message": "\"1912-06-23\" is not a real date of the form MM/DD/YYYY, e.g. 07/14/1990", "changes": [], "row": 3,
    "external_id": "E1003", "email": "alan.turing@example.com", "first_name": "Alan",
    "last_name": "Turing", "user_id": null, "team": null,
    "help": "/v1/error-codes/DATE_OF_BIRTH_IS_MISSING_OR_INVALID", "planned": true
}))]
pub struct EventView {
    /// Position in the report, in planned order.
    #[schema(example = 1, minimum = 1)]
    pub seq: i32,
    pub kind: EventKind,
    pub entity: EntityKind,
    /// What an update did; `null` for issues.
    #[schema(required = true)]
    pub action: Option<UpdateAction>,
    /// An issue's code (see `GET /v1/error-codes`); `null` for updates.
    #[schema(required = true, value_type = Option<IssueCode>)]
    pub code: Option<String>,
    /// An issue's severity; `null` for updates.
    #[schema(required = true)]
    pub severity: Option<Severity>,
    /// The record field at fault, for issues about one field.
    #[schema(required = true, example = "date_of_birth")]
    pub field: Option<String>,
    /// An issue's message, naming the value at fault.
    #[schema(
        required = true,
        example = "\"1912-06-23\" is not a real date of the form MM/DD/YYYY, e.g. 07/14/1990"
    )]
    pub message: Option<String>,
    /// Fields changed, old → new (updates); empty for issues.
    pub changes: Vec<ChangeView>,
    /// Where the record is: its 1-based position in a JSON push, or its line in an uploaded
    /// file (the header is line 1); `null` for lines about no record (a team created, a user
    /// archived by a full sync).
    #[schema(required = true, minimum = 1, example = 3)]
    pub row: Option<i32>,
    #[schema(required = true, example = "E1003")]
    pub external_id: Option<String>,
    #[schema(required = true, example = "alan.turing@example.com")]
    pub email: Option<String>,
    #[schema(required = true, example = "Alan")]
    pub first_name: Option<String>,
    #[schema(required = true, example = "Turing")]
    pub last_name: Option<String>,
    /// The directory user the line is about, once known.
    #[schema(
        required = true,
        format = "uuid",
        example = "0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f"
    )]
    pub user_id: Option<String>,
    /// The team, for team lines.
    #[schema(required = true, example = json!(null))]
    pub team: Option<String>,
    /// Where the remediation steps of the issue are; `null` for updates.
    #[schema(
        required = true,
        example = "/v1/error-codes/DATE_OF_BIRTH_IS_MISSING_OR_INVALID"
    )]
    pub help: Option<String>,
    /// True when the line was planned and not applied: the run is a dry run, awaits
    /// approval, was rejected, or failed when it was applied after its approval.
    #[schema(example = false)]
    pub planned: bool,
}

/// One changed field of an update.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"field": "teams", "old": ["Engineering"], "new": ["Research", "Engineering"]}))]
pub struct ChangeView {
    #[schema(example = "manager_external_id")]
    pub field: String,
    /// The value before: any JSON value (text, list, object), `null` when empty.
    #[schema(value_type = Value, example = json!(null))]
    pub old: serde_json::Value,
    /// The value after: any JSON value (text, list, object), `null` when empty.
    #[schema(value_type = Value, example = "E1001")]
    pub new: serde_json::Value,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> EventView {
        EventView {
            seq: row.seq,
            kind: EventKind::from_stored(&row.kind).unwrap_or(EventKind::Issue),
            entity: EntityKind::from_stored(&row.entity).unwrap_or(EntityKind::User),
            action: row.action.as_deref().and_then(UpdateAction::from_stored),
            help: row
                .code
                .as_ref()
                .map(|code| format!("/v1/error-codes/{code}")),
            code: row.code,
            severity: row.severity.as_deref().and_then(Severity::from_stored),
            field: row.field,
            message: row.message,
            changes: row
                .changes
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default(),
            row: row.source_row,
            external_id: row.external_id,
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            user_id: row.user_id,
            team: row.team,
            planned: false,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// Only updates, or only issues.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub kind: Option<EventKind>,
    /// Only lines about users, or about teams.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub entity: Option<EntityKind>,
    /// An update action, e.g. USER_CREATED.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub action: Option<UpdateAction>,
    /// An issue code, e.g. MANAGER_DOES_NOT_EXIST.
    #[param(value_type = Option<IssueCode>)]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub code: Option<String>,
    /// Part of a person's name, e-mail or external id, or of a team name; case and accents
    /// are ignored.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub q: Option<String>,
}

page_schema!(
    /// A page of a run's report, in planned order.
    EventPage,
    EventView
);

/// Read a run's report
///
/// Every update (with old → new values) and every issue of the run, in planned order.
/// Filters combine; an empty value (`?kind=`) means the filter is not set.
#[utoipa::path(
    operation_id = "listSyncEvents",
    tag = "syncs",
    params(("id" = String, Path, format = "uuid", description = "The run id."), EventListParams, PageParams),
    responses(
        (status = 200, description = "A page of the report, in planned order.", body = EventPage),
        (status = 400, description = "A filter, limit or cursor is not valid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in this organization.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/syncs/{id}/events")]
pub async fn list(
    caller: ReadAccess,
    id: web::Path<String>,
    filter: web::Query<EventListParams>,
    page: web::Query<PageParams>,
    state: web::Data<AppState>,
) -> Result<web::Json<Page<EventView>>, AppError> {
    let run_id = id.into_inner();
    let limit = page.limit()?;
    if let Some(q) = &filter.q {
        crate::domain::check_search_text(q).map_err(AppError::bad_request)?;
    }
    let after = match page.position(&format!("events.{run_id}"))? {
        Some(seq) => Some(
            seq.parse::<i32>()
                .map_err(|_| AppError::bad_request("cursor is not a cursor of this list."))?,
        ),
        None => None,
    };
    let code = match &filter.code {
        Some(code) => Some(
            IssueCode::parse(code)
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "code {code:?} is not an issue code; GET /v1/error-codes lists them."
                    ))
                })?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let filter = EventFilter {
        kind: filter.kind,
        entity: filter.entity,
        action: filter.action,
        code,
        query: filter
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
    };
    let pool = state.pool.clone();
    let cursor_kind = format!("events.{run_id}");
    let (rows, planned) = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let run = find_run(&mut conn, &caller.organization_id, &run_id)?;
        let planned = report_is_planned(run.status, run.dry_run);
        let rows = events::list(&mut conn, &run.id, &filter, after, Some(limit + 1))?;
        Ok((rows, planned))
    })
    .await??;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        &cursor_kind,
        |row| row.seq.to_string(),
        |row| EventView {
            planned,
            ..EventView::from(row)
        },
    )))
}
