//! The catalogue of issue codes, with remediation steps.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::catalogue::{Entry, IssueCode, ENTRIES};
use crate::error::{AppError, Problem};
use crate::http::auth::ReadAccess;
use crate::http::pagination::{page_schema, Page, PageParams};

page_schema!(
    /// A page of the issue-code catalogue.
    ErrorCodePage,
    Entry
);

/// List every issue code
///
/// The whole catalogue of issue codes a run can report, in a stable order, each with its
/// family (category), severity and numbered remediation steps.
#[utoipa::path(
    operation_id = "listErrorCodes",
    tag = "error-codes",
    params(PageParams),
    responses(
        (status = 200, description = "The catalogue, in a stable order.", body = ErrorCodePage),
        (status = 400, description = "The limit or cursor is not valid.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/error-codes")]
pub async fn list(
    _caller: ReadAccess,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Entry>>, AppError> {
    let limit = page.limit()?;
    let start = match page.position("error-codes")? {
        Some(code) => {
            let code = IssueCode::parse(&code)
                .ok_or_else(|| AppError::bad_request("cursor is not a cursor of this list."))?;
            ENTRIES
                .iter()
                .position(|e| e.code == code)
                .map_or(ENTRIES.len(), |at| at + 1)
        }
        None => 0,
    };
    let rows: Vec<Entry> = ENTRIES
        .iter()
        .skip(start)
        .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
        .copied()
        .collect();
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        "error-codes",
        |e| e.code.as_str().to_owned(),
        |e| e,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CodePath {
    /// An issue code, e.g. MANAGER_DOES_NOT_EXIST.
    #[param(value_type = IssueCode, example = "MANAGER_DOES_NOT_EXIST")]
    pub code: String,
}

/// Read one issue code
///
/// What the code means, what hris-sync did with the record, and the steps that resolve it.
/// An issue's `help` link points here.
#[utoipa::path(
    operation_id = "getErrorCode",
    tag = "error-codes",
    params(CodePath),
    responses(
        (status = 200, description = "The code's entry.", body = Entry),
        (status = 401, description = "Missing or unknown token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such code.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/error-codes/{code}")]
pub async fn get(
    _caller: ReadAccess,
    path: web::Path<CodePath>,
) -> Result<web::Json<Entry>, AppError> {
    let code = IssueCode::parse(&path.code).ok_or_else(|| {
        AppError::NotFound(format!(
            "There is no issue code {:?}; GET /v1/error-codes lists them all.",
            path.code
        ))
    })?;
    Ok(web::Json(*code.entry()))
}
