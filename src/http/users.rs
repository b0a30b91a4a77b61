//! The directory: users, their upcoming trips, invitations by hand.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{
    check_search_text, search_key, ApprovalProcess, Email, EmploymentStatus, PendingArchiveReason,
    Role, UserState,
};
use crate::error::{AppError, FieldError, Problem};
use crate::http::auth::{AdminAccess, ReadAccess};
use crate::http::pagination::{page_schema, Page, PageParams};
use crate::http::AppState;
use crate::store::models::UserRow;
use crate::store::{now, users, write_transaction, DbConn};

/// A user of the directory. Every field is always present; optional values are `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(format = "uuid", example = "0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f")]
    pub id: String,
    /// The HR tool's id of the person; `null` for a user invited by hand.
    #[schema(required = true, example = "E1001")]
    pub external_id: Option<String>,
    #[schema(format = "email", example = "ada.lovelace@example.com")]
    pub email: String,
    #[schema(required = true, example = "ada.lovelace")]
    pub username: Option<String>,
    #[schema(example = "Ada")]
    pub first_name: String,
    #[schema(example = "Lovelace")]
    pub last_name: String,
    pub state: UserState,
    #[schema(value_type = Role)]
    pub role: String,
    #[schema(value_type = ApprovalProcess)]
    pub approval_process: String,
    #[schema(value_type = EmploymentStatus)]
    pub employment_status: String,
    /// The manager's user id.
    #[schema(required = true, format = "uuid", example = json!(null))]
    pub manager_id: Option<String>,
    /// The manager's external id.
    #[schema(required = true, example = json!(null))]
    pub manager_external_id: Option<String>,
    #[schema(example = json!(["Engineering"]))]
    pub teams: Vec<String>,
    #[schema(required = true, format = "date", example = "2024-03-01")]
    pub start_date: Option<String>,
    #[schema(required = true, format = "date", example = json!(null))]
    pub end_date: Option<String>,
    /// MM/DD/YYYY, as HR tools send it.
    #[schema(
        required = true,
        pattern = "^[0-9]{2}/[0-9]{2}/[0-9]{4}$",
        example = "12/10/1985"
    )]
    pub date_of_birth: Option<String>,
    #[schema(required = true, example = "F")]
    pub gender: Option<String>,
    /// `+<country code> <number>`.
    #[schema(required = true, example = "+44 2071838750")]
    pub phone: Option<String>,
    /// Values of the organization's custom fields, by field name.
    #[schema(example = json!({"cost_center": "CC-204"}))]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// Set by the host application; an offboarding waits while it is above zero.
    #[schema(minimum = 0, example = 0)]
    pub upcoming_trips: i32,
    #[schema(format = "date-time", example = "2026-11-25T09:00:01.402113Z")]
    pub created_at: String,
    #[schema(format = "date-time", example = "2026-11-25T09:00:01.402113Z")]
    pub updated_at: String,
    /// When the user was archived; `null` unless archived.
    #[schema(required = true, format = "date-time", example = json!(null))]
    pub archived_at: Option<String>,
    /// The groups the provisioning settings' group rules give the user.
    #[schema(example = json!(["Sales EMEA"]))]
    pub groups: Vec<String>,
    /// Why a `pending_archive` user waits: `upcoming_trips`, or `missing_from_full_sync` (the
    /// archive grace period); `null` in any other state.
    #[schema(required = true, example = json!(null))]
    pub pending_archive_reason: Option<PendingArchiveReason>,
    /// When the user became `pending_archive`.
    #[schema(required = true, format = "date-time", example = json!(null))]
    pub pending_archive_since: Option<String>,
}

impl UserView {
    fn new(row: UserRow, manager_external_id: Option<String>) -> UserView {
        UserView {
            state: UserState::parse(&row.state).unwrap_or(UserState::Active),
            teams: serde_json::from_str(&row.teams).unwrap_or_default(),
            custom_fields: serde_json::from_str(&row.custom_fields).unwrap_or_default(),
            manager_external_id,
            id: row.id,
            external_id: row.external_id,
            email: row.email,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            role: row.role,
            approval_process: row.approval_process,
            employment_status: row.employment_status,
            manager_id: row.manager_id,
            start_date: row.start_date,
            end_date: row.end_date,
            date_of_birth: row.date_of_birth,
            gender: row.gender,
            phone: row.phone,
            upcoming_trips: row.upcoming_trips,
            created_at: row.created_at,
            updated_at: row.updated_at,
            archived_at: row.archived_at,
            groups: serde_json::from_str(&row.groups).unwrap_or_default(),
            pending_archive_reason: row
                .pending_archive_reason
                .as_deref()
                .and_then(|reason| PendingArchiveReason::parse(reason).ok()),
            pending_archive_since: row.pending_archive_since,
        }
    }
}

/// Views of rows, with their managers' external ids looked up in one query.
fn views(
    conn: &mut DbConn,
    organization_id: &str,
    rows: Vec<UserRow>,
) -> Result<Vec<UserView>, AppError> {
    let manager_ids: Vec<String> = rows.iter().filter_map(|r| r.manager_id.clone()).collect();
    let managers = users::external_ids(conn, organization_id, &manager_ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let manager = row
                .manager_id
                .as_ref()
                .and_then(|id| managers.get(id).cloned().flatten());
            UserView::new(row, manager)
        })
        .collect())
}

fn view(conn: &mut DbConn, organization_id: &str, row: UserRow) -> Result<UserView, AppError> {
    views(conn, organization_id, vec![row])?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a view of one user is empty")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Only users in this state.
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub state: Option<UserState>,
    /// Part of a name, e-mail or external id; case and accents are ignored.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    #[serde(default, deserialize_with = "crate::http::params::optional")]
    pub q: Option<String>,
}

page_schema!(
    /// A page of users, in creation order.
    UserPage,
    UserView
);

/// List users
///
/// The directory, in creation order. Filters combine; an empty value (`?state=`) means the
/// filter is not set.
#[utoipa::path(
    operation_id = "listUsers",
    tag = "users",
    params(UserListParams, PageParams),
    responses(
        (status = 200, description = "A page of users, in creation order.", body = UserPage),
        (status = 400, description = "A filter, limit or cursor is not valid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users")]
pub async fn list(
    caller: ReadAccess,
    filter: web::Query<UserListParams>,
    page: web::Query<PageParams>,
    state: web::Data<AppState>,
) -> Result<web::Json<Page<UserView>>, AppError> {
    let limit = page.limit()?;
    let after = page.id_position("users")?;
    if let Some(q) = &filter.q {
        check_search_text(q).map_err(AppError::bad_request)?;
    }
    let filter = users::UserFilter {
        state: filter.state,
        query: filter
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
    };
    let pool = state.pool.clone();
    let page = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let rows = users::list(
            &mut conn,
            &caller.organization_id,
            &filter,
            after.as_deref(),
            limit + 1,
        )?;
        let page = Page::from_rows(rows, limit, "users", |row| row.id.clone(), |row| row);
        let items = views(&mut conn, &caller.organization_id, page.items)?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    })
    .await??;
    Ok(web::Json(page))
}

/// Read a user
///
/// One user of the directory, with their manager's external id.
#[utoipa::path(
    operation_id = "getUser",
    tag = "users",
    params(("id" = String, Path, format = "uuid", description = "The user id.")),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this organization.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/users/{id}", guard = "not_invitations")]
pub async fn get(
    caller: ReadAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<UserView>, AppError> {
    let id = id.into_inner();
    let pool = state.pool.clone();
    let user = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let row = find_user(&mut conn, &caller.organization_id, &id)?;
        view(&mut conn, &caller.organization_id, row)
    })
    .await??;
    Ok(web::Json(user))
}

/// `/v1/users/invitations` is a path of its own (POST only): another method on it is a 405,
/// not a user whose id is "invitations".
fn not_invitations(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    !ctx.head().uri.path().ends_with("/users/invitations")
}

fn find_user(conn: &mut DbConn, organization_id: &str, id: &str) -> Result<UserRow, AppError> {
    users::find(conn, organization_id, id)?
        .ok_or_else(|| AppError::NotFound(format!("There is no user {id:?} in this organization.")))
}

/// What the host application may change on a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Upcoming trips of the user; while above zero, an offboarding waits (`pending_archive`).
    #[schema(value_type = i32, minimum = 0, maximum = 1000000, example = 2)]
    #[serde(deserialize_with = "crate::http::params::whole_number")]
    pub upcoming_trips: i64,
}

/// Set a user's upcoming trips
///
/// The host application reports how many trips the user has booked; while that is above zero
/// an offboarding waits (`pending_archive`), and it completes once the count is back to zero.
#[utoipa::path(
    operation_id = "updateUser",
    tag = "users",
    params(("id" = String, Path, format = "uuid", description = "The user id.")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user, changed.", body = UserView),
        (status = 400, description = "Malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/users/{id}", guard = "not_invitations")]
pub async fn update(
    caller: AdminAccess,
    id: web::Path<String>,
    body: web::Json<UserPatch>,
    state: web::Data<AppState>,
) -> Result<web::Json<UserView>, AppError> {
    let trips = body.upcoming_trips;
    let Some(trips) = i32::try_from(trips)
        .ok()
        .filter(|trips| (0..=1_000_000).contains(trips))
    else {
        return Err(AppError::unprocessable(
            "upcoming_trips must be between 0 and 1000000.",
            vec![FieldError::new(
                "/upcoming_trips",
                "must be between 0 and 1000000",
            )],
        ));
    };
    let id = id.into_inner();
    let pool = state.write_pool.clone();
    let user = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let row = write_transaction(&mut conn, |conn| -> Result<UserRow, AppError> {
            find_user(conn, &caller.organization_id, &id)?;
            users::set_upcoming_trips(conn, &caller.organization_id, &id, trips)?;
            find_user(conn, &caller.organization_id, &id)
        })?;
        view(&mut conn, &caller.organization_id, row)
    })
    .await??;
    Ok(web::Json(user))
}

/// A person invited by hand, outside the HR sync.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    /// A work e-mail address, `name@company.com`.
    #[schema(
        format = "email",
        max_length = 254,
        pattern = "^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "katherine.johnson@example.com"
    )]
    pub email: String,
    /// 1 to 255 characters, not blank, without control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Katherine"
    )]
    pub first_name: String,
    /// 1 to 255 characters, not blank, without control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Johnson"
    )]
    pub last_name: String,
    /// Default member.
    pub role: Option<Role>,
}

/// Invite a person by hand
///
/// Creates an `invited` user. A later sync with the same e-mail reports
/// USER_EXISTS_IN_INVITED_STATE until the invitation is revoked.
#[utoipa::path(
    operation_id = "inviteUser",
    tag = "users",
    request_body(content = Invitation, example = json!({
        "email": "katherine.johnson@example.com", "first_name": "Katherine",
        "last_name": "Johnson", "role": "member"
    })),
    responses(
        (status = 201, description = "The invited user.", body = UserView,
            headers(("Location" = String, description = "The user's URL, `/v1/users/{id}`."))),
        (status = 400, description = "Malformed JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A user already has this e-mail address.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/invitations")]
pub async fn invite(
    caller: AdminAccess,
    body: web::Json<Invitation>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let invitation = body.into_inner();
    let mut errors = Vec::new();
    let email = Email::parse(&invitation.email)
        .map_err(|reason| errors.push(FieldError::new("/email", reason)))
        .ok();
    let mut name = |pointer: &str, value: &str| {
        let trimmed = value.trim();
        if trimmed.is_empty() || crate::domain::check_text(trimmed, 255).is_err() {
            errors.push(FieldError::new(
                pointer,
                "must be 1 to 255 characters, without control characters",
            ));
        }
        trimmed.to_owned()
    };
    let first_name = name("/first_name", &invitation.first_name);
    let last_name = name("/last_name", &invitation.last_name);
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(AppError::unprocessable(
            "The invitation is not valid.",
            errors,
        ));
    };
    let role = invitation.role.unwrap_or(Role::Member);
    let mut row = UserRow::new(
        &caller.organization_id,
        UserState::Invited,
        role,
        ApprovalProcess::default_for(role),
        &now(),
    );
    row.email_key = email.normalized();
    row.email = email.as_str().to_owned();
    row.search_key = search_key(&[Some(&first_name), Some(&last_name), Some(email.as_str())]);
    row.first_name = first_name;
    row.last_name = last_name;
    let pool = state.write_pool.clone();
    let user = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        write_transaction(&mut conn, |conn| -> Result<(), AppError> {
            if let Some(owner) = users::find_by_email(conn, &row.organization_id, &row.email_key)? {
                return Err(AppError::Conflict(format!(
                    "The user {} ({}) already has the e-mail address {}.",
                    owner.id, owner.state, row.email
                )));
            }
            users::insert(conn, &row)?;
            Ok(())
        })?;
        Ok(UserView::new(row, None))
    })
    .await??;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/users/{}", user.id)))
        .json(user))
}

/// Revoke an invitation
///
/// Deletes a user who was invited by hand and never became active, so that a sync can
/// create them from the HR record.
#[utoipa::path(
    operation_id = "revokeInvitation",
    tag = "users",
    params(("id" = String, Path, format = "uuid", description = "The invited user's id.")),
    responses(
        (status = 204, description = "The invitation is revoked and the invited user removed."),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this organization.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is not in the invited state.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{id}/revoke-invitation")]
pub async fn revoke_invitation(
    caller: AdminAccess,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let pool = state.write_pool.clone();
    web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        write_transaction(&mut conn, |conn| -> Result<(), AppError> {
            let user = find_user(conn, &caller.organization_id, &id)?;
            if user.state != UserState::Invited.as_str() {
                return Err(AppError::Conflict(format!(
                    "The user {id} is {}, not invited: only an invitation can be revoked.",
                    user.state
                )));
            }
            users::delete(conn, &caller.organization_id, &id)?;
            Ok(())
        })
    })
    .await??;
    Ok(HttpResponse::NoContent().finish())
}
