//! One application error type, rendered as RFC 9457 `application/problem+json`.
//!
//! Internal causes are logged here, with the request's span, and never sent to the client.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::faults::{self, StoreFault};

/// A problem with one place of a request body, located by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "/users/3/email")]
    pub pointer: String,
    #[schema(example = "expected a list of objects")]
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:hris-sync:problem:not-found")]
    pub problem_type: String,
    #[schema(example = "Not Found")]
    pub title: String,
    /// Equal to the HTTP status of the response.
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "No sync run 0192f0c1-7e0a-7c3b-9a59-3b4d8f1e2a10 in this organization.")]
    pub detail: String,
    /// Present when a request body was invalid: one entry per offending place.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("conflict: {0}")]
    Conflict(String),
    /// An `If-Match` precondition failed: the resource changed since the client read it.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("unprocessable: {detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The queue is full (backpressure): nothing was stored; retry after `Retry-After`.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The store has no room left: nothing was stored; retry once space is freed.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl AppError {
    pub fn bad_request(detail: impl Into<String>) -> AppError {
        AppError::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> AppError {
        AppError::Unprocessable {
            detail: detail.into(),
            errors,
        }
    }

    /// A copy of an error found inside an error chain (errors are not `Clone`: causes are not).
    fn rebuild(error: &AppError) -> AppError {
        match error {
            AppError::BadRequest { detail, errors } => AppError::BadRequest {
                detail: detail.clone(),
                errors: errors.clone(),
            },
            AppError::Unprocessable { detail, errors } => AppError::Unprocessable {
                detail: detail.clone(),
                errors: errors.clone(),
            },
            AppError::Unauthorized(d) => AppError::Unauthorized(d.clone()),
            AppError::Forbidden(d) => AppError::Forbidden(d.clone()),
            AppError::NotFound(d) => AppError::NotFound(d.clone()),
            AppError::MethodNotAllowed { allow } => AppError::MethodNotAllowed {
                allow: allow.clone(),
            },
            AppError::Conflict(d) => AppError::Conflict(d.clone()),
            AppError::PayloadTooLarge(d) => AppError::PayloadTooLarge(d.clone()),
            AppError::UnsupportedMediaType(d) => AppError::UnsupportedMediaType(d.clone()),
            AppError::PreconditionFailed(d) => AppError::PreconditionFailed(d.clone()),
            AppError::TooManyRequests(d) => AppError::TooManyRequests(d.clone()),
            AppError::Unavailable(d) => AppError::Unavailable(d.clone()),
            AppError::InsufficientStorage(d) => AppError::InsufficientStorage(d.clone()),
            AppError::Internal(cause) => AppError::Internal(anyhow::anyhow!("{cause:#}")),
        }
    }

    /// When a client may try again: the store's faults of the moment pass.
    fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            AppError::TooManyRequests(_) => Some(30),
            AppError::Unavailable(_) => Some(5),
            AppError::InsufficientStorage(_) => Some(60),
            _ => None,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } => "bad-request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not-found",
            AppError::MethodNotAllowed { .. } => "method-not-allowed",
            AppError::Conflict(_) => "conflict",
            AppError::PreconditionFailed(_) => "precondition-failed",
            AppError::PayloadTooLarge(_) => "payload-too-large",
            AppError::UnsupportedMediaType(_) => "unsupported-media-type",
            AppError::Unprocessable { .. } => "unprocessable-content",
            AppError::TooManyRequests(_) => "too-many-requests",
            AppError::Unavailable(_) => "service-unavailable",
            AppError::InsufficientStorage(_) => "insufficient-storage",
            AppError::Internal(_) => "internal",
        }
    }

    /// The problem document sent to the client; internal details never appear in it.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (detail, errors) = match self {
            AppError::BadRequest { detail, errors }
            | AppError::Unprocessable { detail, errors } => (detail.clone(), errors.clone()),
            AppError::Unauthorized(detail)
            | AppError::Forbidden(detail)
            | AppError::NotFound(detail)
            | AppError::Conflict(detail)
            | AppError::PreconditionFailed(detail)
            | AppError::PayloadTooLarge(detail)
            | AppError::UnsupportedMediaType(detail)
            | AppError::TooManyRequests(detail)
            | AppError::Unavailable(detail)
            | AppError::InsufficientStorage(detail) => (detail.clone(), Vec::new()),
            AppError::MethodNotAllowed { allow } => (
                format!("This path accepts only: {}.", allow.join(", ")),
                Vec::new(),
            ),
            AppError::Internal(_) => (
                "The server failed to handle this request. It has been logged; try again later."
                    .to_owned(),
                Vec::new(),
            ),
        };
        problem(status, self.slug(), detail, errors)
    }
}

/// Builds a problem document for `status`.
pub fn problem(status: StatusCode, slug: &str, detail: String, errors: Vec<FieldError>) -> Problem {
    Problem {
        problem_type: format!("urn:hris-sync:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        errors,
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Renders a problem document with its content type.
pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
        .body(serde_json::to_string(problem).unwrap_or_default())
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = problem_response(&self.problem());
        if let AppError::Unauthorized(_) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hris-sync\""),
            );
        }
        if let Some(seconds) = self.retry_after_seconds() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let AppError::MethodNotAllowed { allow } = self {
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        response
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> AppError {
        match error {
            diesel::result::Error::NotFound => {
                AppError::NotFound("The resource does not exist.".into())
            }
            // Two requests raced for the same unique value (an e-mail, say).
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::Conflict(
                "This conflicts with a resource that already exists (it may have just been created).".into(),
            ),
            other => match faults::classify(&other) {
                StoreFault::StorageFull => {
                    tracing::error!(error = %other, "the database has no space left");
                    AppError::InsufficientStorage(STORAGE_FULL_DETAIL.into())
                }
                StoreFault::ReadOnly
                | StoreFault::Busy
                | StoreFault::ConnectionLost
                | StoreFault::Io
                | StoreFault::StatementTimeout => {
                    tracing::error!(error = %other, "the database cannot take this request now");
                    AppError::Unavailable(STORE_UNAVAILABLE_DETAIL.into())
                }
                StoreFault::NotTransient => {
                    AppError::Internal(anyhow::Error::new(other).context("database query failed"))
                }
            },
        }
    }
}

/// A failure deep in the service: a store fault of the moment (a full disk, a busy or read-only
/// database) is told to the client as such (507/503 with `Retry-After`); anything else is a 500.
impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> AppError {
        if let Some(app_error) = error.downcast_ref::<AppError>() {
            // Already decided further down; keep its status and words.
            return AppError::rebuild(app_error);
        }
        match faults::classify_any(&error) {
            StoreFault::StorageFull => {
                tracing::error!(error = ?error, "the database has no space left");
                AppError::InsufficientStorage(STORAGE_FULL_DETAIL.into())
            }
            StoreFault::NotTransient => AppError::Internal(error),
            fault => {
                tracing::error!(error = ?error, ?fault, "the database cannot take this request now");
                AppError::Unavailable(STORE_UNAVAILABLE_DETAIL.into())
            }
        }
    }
}

const STORAGE_FULL_DETAIL: &str = "The service has no storage space left, so nothing was stored. Retry later; the operator has been alerted in the logs.";
const STORE_UNAVAILABLE_DETAIL: &str =
    "The database cannot take this request right now, so nothing was changed; try again shortly.";

impl From<crate::store::PoolError> for AppError {
    fn from(error: crate::store::PoolError) -> AppError {
        tracing::error!(%error, "no database connection");
        AppError::Unavailable("The database is unavailable; try again shortly.".into())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> AppError {
        AppError::Internal(anyhow::Error::new(error).context("blocking task was cancelled"))
    }
}
