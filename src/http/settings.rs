//! Provisioning settings: read, replace (with optimistic concurrency), and their history.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, put, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ProvisioningSettings;
use crate::error::{AppError, Problem};
use crate::http::auth::{AdminAccess, ReadAccess};
use crate::http::pagination::{page_schema, Page, PageParams};
use crate::http::AppState;
use crate::store::models::SettingsVersionRow;
use crate::store::settings::{self, CurrentSettings, Replaced};
use crate::store::tokens;

/// One version of the settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsVersionView {
    /// 1 for the first change; the current settings are the highest version.
    #[schema(example = 3)]
    pub version: i32,
    /// The name of the token that made the change.
    #[schema(example = "admin")]
    pub changed_by: String,
    /// When the change was saved (RFC 3339, UTC).
    #[schema(format = "date-time", example = "2026-11-24T16:20:05.118000Z")]
    pub changed_at: String,
    /// The whole document as it was saved.
    pub document: ProvisioningSettings,
}

page_schema!(
    /// A page of settings versions, newest first.
    SettingsVersionPage,
    SettingsVersionView
);

impl TryFrom<SettingsVersionRow> for SettingsVersionView {
    type Error = AppError;

    fn try_from(row: SettingsVersionRow) -> Result<SettingsVersionView, AppError> {
        let document = serde_json::from_str(&row.document).map_err(|error| {
            AppError::Internal(anyhow::Error::new(error).context("stored settings version"))
        })?;
        Ok(SettingsVersionView {
            version: row.version,
            changed_by: row.changed_by,
            changed_at: row.changed_at,
            document,
        })
    }
}

/// The entity tag of a settings version.
fn etag(version: i32) -> String {
    format!("\"settings-v{version}\"")
}

/// The settings with their `ETag` and version.
fn settings_response(current: &CurrentSettings) -> HttpResponse {
    let mut response = HttpResponse::Ok()
        .insert_header(("X-Settings-Version", current.version.to_string()))
        .json(&current.settings);
    if let Ok(value) = HeaderValue::from_str(&etag(current.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The version an `If-Match` header requires: `None` without the header or with `*`.
/// A tag that is not one we issued can match no version: it is stale by definition.
fn required_version(req: &HttpRequest) -> Result<Option<i32>, AppError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AppError::bad_request("If-Match is not readable text."))?;
    let tags: Vec<&str> = text.split(',').map(str::trim).collect();
    if tags.contains(&"*") {
        return Ok(None);
    }
    let version = tags.iter().find_map(|tag| {
        tag.strip_prefix("\"settings-v")?
            .strip_suffix('"')?
            .parse::<i32>()
            .ok()
    });
    // -1 is no version: the write is refused as stale.
    Ok(Some(version.unwrap_or(-1)))
}

/// Read the provisioning settings
///
/// The whole document, with its `ETag` (send it back in `If-Match` when replacing the
/// settings, so that two administrators cannot overwrite each other's change unknowingly).
/// With `If-None-Match` naming the current `ETag`, the answer is 304 without a body.
#[utoipa::path(
    tag = "settings",
    operation_id = "getProvisioningSettings",
    params(
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "An ETag read before: 304 if the settings are still that version."),
    ),
    responses(
        (status = 200, description = "The current settings.", body = ProvisioningSettings,
            headers(
                ("ETag" = String, description = "The settings' version tag, for If-Match."),
                ("X-Settings-Version" = i32, description = "The settings' version number (0 until first changed)."),
            )),
        (status = 304, description = "The settings are still the version of If-None-Match.",
            headers(("ETag" = String, description = "The settings' version tag."))),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/settings/provisioning")]
pub async fn get(
    caller: ReadAccess,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = state.pool.clone();
    let current = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        Ok(settings::current(&mut conn, &caller.organization_id)?)
    })
    .await??;
    let tag = etag(current.version);
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    Ok(settings_response(&current))
}

/// Replace the provisioning settings
///
/// Send the whole document: a key left out takes its default, an unknown key is refused.
/// Every problem of the document is reported at once (422, one `errors[]` entry with a JSON
/// pointer per problem) and nothing is changed. `If-Match` is optional; when it is sent it
/// must carry the current `ETag` (or `*`), else the answer is 412 and nothing is changed.
/// Every change makes a new version (see the history); sending the current document again
/// changes nothing.
#[utoipa::path(
    tag = "settings",
    operation_id = "replaceProvisioningSettings",
    request_body(content = ProvisioningSettings, content_type = "application/json"),
    params(
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the settings this change is based on."),
    ),
    responses(
        (status = 200, description = "The settings now in force.", body = ProvisioningSettings,
            headers(
                ("ETag" = String, description = "The new version tag."),
                ("X-Settings-Version" = i32, description = "The new version number."),
            )),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names another version than the current one.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the size limit.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document is not valid: every problem, each with its pointer.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/settings/provisioning")]
pub async fn replace(
    caller: AdminAccess,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let expected = required_version(&req)?;
    let new_settings = ProvisioningSettings::parse(&body).map_err(|errors| {
        AppError::unprocessable(
            format!(
                "The settings document has {} problem(s); nothing was changed.",
                errors.len()
            ),
            errors,
        )
    })?;
    let pool = state.write_pool.clone();
    let replaced = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        let changed_by = tokens::name(&mut conn, &caller.token_id)?;
        Ok(settings::replace(
            &mut conn,
            &caller.organization_id,
            &new_settings,
            expected,
            &changed_by,
        )?)
    })
    .await??;
    match replaced {
        Replaced::Changed(current) => {
            tracing::info!(version = current.version, "provisioning settings changed");
            Ok(settings_response(&current))
        }
        Replaced::Unchanged(current) => Ok(settings_response(&current)),
        Replaced::Stale { current } => Err(AppError::PreconditionFailed(format!(
            "The settings changed since you read them (they are now at ETag {}); read them again, reapply your change and send it with the new ETag.",
            etag(current)
        ))),
    }
}

/// List the versions of the provisioning settings, newest first
///
/// Every change: its version, who made it (the token's name), when, and the whole document.
#[utoipa::path(
    tag = "settings",
    operation_id = "listProvisioningSettingsHistory",
    params(PageParams),
    responses(
        (status = 200, description = "A page of versions.", body = SettingsVersionPage),
        (status = 400, description = "The limit or cursor is not valid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/settings/provisioning/history")]
pub async fn history(
    caller: ReadAccess,
    page: web::Query<PageParams>,
    state: web::Data<AppState>,
) -> Result<web::Json<Page<SettingsVersionView>>, AppError> {
    let limit = page.limit()?;
    let before = page
        .position("settings-history")?
        .map(|position| {
            position.parse::<i32>().map_err(|_| {
                AppError::bad_request(
                    "cursor is not a cursor of this list; use next_cursor of the previous page as it is.",
                )
            })
        })
        .transpose()?;
    let pool = state.pool.clone();
    let rows = web::block(move || -> Result<_, AppError> {
        let mut conn = pool.get()?;
        Ok(settings::history(
            &mut conn,
            &caller.organization_id,
            before,
            limit + 1,
        )?)
    })
    .await??;
    let page = Page::from_rows(
        rows,
        limit,
        "settings-history",
        |row| row.version.to_string(),
        SettingsVersionView::try_from,
    );
    Ok(web::Json(Page {
        items: page.items.into_iter().collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}
