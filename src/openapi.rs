//! The OpenAPI document: what the handlers declare, plus the API's description, its
//! bearer-token security scheme, and what every operation shares (the `X-Request-Id` response
//! header, a problem example per error status, `security: []` on the operations endpoints).
//! `hris-sync openapi` prints it; `openapi/openapi.json` is that output, checked in and
//! compared by a test. The conventions it follows are in API-DESIGN.md.

use actix_web::http::StatusCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::info::{ContactBuilder, LicenseBuilder};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{RefOr, Required, SecurityRequirement};
use utoipa::{Modify, OpenApi};

use crate::error::{problem, FieldError, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hris-sync",
        description = "Keeps a company's user directory in step with its HR system. HR tools push \
batches of employee records; every push becomes a sync run whose report lists each update applied \
and each issue found, with a code and the steps that fix it.\n\n\
Authenticate with `Authorization: Bearer <token>`. Scopes nest: `sync:read` (every GET) ⊂ \
`sync:write` (pushes) ⊂ `admin` (changes to users). Errors are RFC 9457 `application/problem+json`. \
Lists answer `{\"items\": [...], \"next_cursor\": ...}`; pass `next_cursor` back as `cursor`. \
Every response carries an `X-Request-Id` header (the client's own, when it sends a sane one), \
which the server's log lines carry too.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "syncs", description = "Push employee records and read the runs they become."),
        (name = "users", description = "The directory that syncs keep in step."),
        (name = "settings", description = "Provisioning settings: the approval gate and the provisioning rules, versioned."),
        (name = "error-codes", description = "Every issue code, with remediation steps."),
        (name = "operations", description = "Health, readiness and metrics; no token needed."),
    )
)]
pub struct ApiDoc;

/// Declares the bearer token, required by every operation that does not opt out.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hsk_…")
                    .description(Some(
                        "An API token: printed by the first start, or by `hris-sync token create`.",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The name of the reusable response header component.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// Completes the document once every route is registered (`crate::http::openapi`), so that a
/// new handler gets what every operation shares without repeating it: the info's contact and
/// license, `servers`, `security: []` where a handler says `security(())`, the `X-Request-Id`
/// header on every response, and a problem example for every error status that does not give
/// its own.
pub fn finish(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    openapi.info.contact = Some(
        ContactBuilder::new()
            .name(Some(
                "hris-sync maintainers (see README.md in the repository)",
            ))
            .build(),
    );
    openapi.info.license = Some(
        LicenseBuilder::new()
            .name("MIT")
            .identifier(Some("MIT"))
            .build(),
    );
    openapi.servers = Some(vec![ServerBuilder::new()
        .url("/")
        .description(Some("The server that serves this document"))
        .build()]);
    let components = openapi.components.get_or_insert_with(Default::default);
    components.headers.insert(
        REQUEST_ID_HEADER.to_owned(),
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(128)),
                ))
                .description(Some(
                    "The request's id: the client's own `X-Request-Id` when it sent 1 to 128 \
visible ASCII characters, otherwise a new UUID. Log lines of the request carry it.",
                ))
                .example(Some(serde_json::json!(
                    "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e"
                )))
                .build(),
        ),
    );
    for (path, item) in openapi.paths.paths.iter_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            share(path, operation);
        }
    }
    openapi
}

fn share(path: &str, operation: &mut Operation) {
    // `security(())` renders as `[{}]`, which generators read as "needs a token": an
    // operation open to anyone says `security: []`.
    if let Some(requirements) = &operation.security {
        let anonymous = requirements.iter().all(|requirement| {
            serde_json::to_value(requirement).is_ok_and(|v| v == serde_json::json!({}))
        });
        if anonymous {
            operation.security = Some(Vec::new());
        }
    }
    // An empty filter (`?status=`) means "not set" (API-DESIGN.md): say so with
    // `allowEmptyValue`, which utoipa has no field for. Numbers (`limit`) are never empty.
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let is_number = parameter.schema.as_ref().is_some_and(|schema| {
            serde_json::to_value(schema)
                .is_ok_and(|schema| schema["type"] == "integer" || schema["type"] == "number")
        });
        if parameter.parameter_in == ParameterIn::Query
            && parameter.required == Required::False
            && !is_number
        {
            parameter
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allowEmptyValue".to_owned(), serde_json::Value::Bool(true));
        }
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        response.headers.insert(
            REQUEST_ID_HEADER.to_owned(),
            RefOr::Ref(utoipa::openapi::Ref::new(format!(
                "#/components/headers/{REQUEST_ID_HEADER}"
            ))),
        );
        if let Some(RefOr::T(content)) = response.content.get_mut(PROBLEM_JSON) {
            if content.example.is_none() && content.examples.is_empty() {
                content.example = problem_example(path, status);
            }
        }
    }
}

/// A realistic problem document for an error status of an operation on `path`.
pub fn problem_example(path: &str, status: &str) -> Option<serde_json::Value> {
    let status = StatusCode::from_bytes(status.as_bytes()).ok()?;
    let missing = if path.starts_with("/v1/users") {
        "There is no user \"0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f\" in this organization."
    } else if path.starts_with("/v1/error-codes") {
        "There is no issue code \"MANAGER_MISSING\"; GET /v1/error-codes lists them all."
    } else {
        "There is no sync run \"0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e\" in this organization."
    };
    let decision = path.ends_with("/approve") || path.ends_with("/reject");
    let download = [".csv", ".json", ".xlsx", ".zip"]
        .iter()
        .any(|extension| path.ends_with(extension));
    let conflict = if path.starts_with("/v1/users") {
        "The user 0193a6d2-2a5b-7c1d-8e9f-0a1b2c3d4e5f (active) already has the e-mail address katherine.johnson@example.com."
    } else if decision {
        "The run 0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e is succeeded; only a run awaiting approval can be approved."
    } else if download {
        "The run 0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e is running: its exports are ready when it ends. Its events can be read meanwhile (GET /v1/syncs/0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e/events)."
    } else {
        "The run 0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e is running; retry it once it has finished."
    };
    let invalid = if path.starts_with("/v1/settings") {
        (
            "The settings document has 1 problem(s); nothing was changed.",
            FieldError::new(
                "/approval/max_archive_percent",
                "A percentage must be between 0 and 100.",
            ),
        )
    } else if decision {
        (
            "The reason is not valid; nothing was decided.",
            FieldError::new("/reason", "At most 1000 characters."),
        )
    } else if path.starts_with("/v1/users") {
        (
            "The invitation is not valid.",
            FieldError::new(
                "/email",
                "\"katherine@\" is not a valid e-mail address (expected name@company.com)",
            ),
        )
    } else {
        (
            "The push is not a well-formed sync request; nothing was stored.",
            FieldError::new("/users/3", "must be a JSON object"),
        )
    };
    let bad_request = if path.starts_with("/v1/sync-log") {
        "since (2026-11-25T00:00:00Z) must be before until (2026-11-01T00:00:00Z)."
    } else if path.ends_with("/export.zip") {
        "ids must name 1 to 50 runs, separated by commas; got 0."
    } else if path == "/v1/settings/provisioning" {
        "The body is not valid JSON: expected value at line 1 column 1."
    } else {
        "limit must be between 1 and 1000, got 0."
    };
    let (slug, detail, errors) = match status.as_u16() {
        400 => ("bad-request", bad_request, vec![]),
        401 => (
            "unauthorized",
            "Send an API token: Authorization: Bearer <token>.",
            vec![],
        ),
        403 => (
            "forbidden",
            "This request needs a token with the admin scope; this token has sync:read.",
            vec![],
        ),
        404 => ("not-found", missing, vec![]),
        409 => ("conflict", conflict, vec![]),
        412 => (
            "precondition-failed",
            "The settings changed since you read them (they are now at ETag \"settings-v4\"); read them again, reapply your change and send it with the new ETag.",
            vec![],
        ),
        413 if path.starts_with("/v1/settings") => (
            "payload-too-large",
            "The body is over the size limit of this endpoint.",
            vec![],
        ),
        413 => (
            "payload-too-large",
            "The body is over the limit of 52428800 bytes; split the push, or raise the limit.",
            vec![],
        ),
        415 if path.starts_with("/v1/settings") => (
            "unsupported-media-type",
            "Send the body as application/json.",
            vec![],
        ),
        415 => (
            "unsupported-media-type",
            "Push employee records as application/json; got \"text/plain\".",
            vec![],
        ),
        422 => ("unprocessable-content", invalid.0, vec![invalid.1]),
        429 => (
            "too-many-requests",
            "This organization already has 200 runs waiting (the limit is 200); retry after Retry-After seconds, or ask the operator to raise --max-pending-runs-per-org. Nothing was stored.",
            vec![],
        ),
        428 => (
            "precondition-required",
            "Send If-Match with the ETag you read, so that a concurrent change is not overwritten.",
            vec![],
        ),
        503 => (
            "service-unavailable",
            "The database is unavailable; try again shortly.",
            vec![],
        ),
        _ => (
            "internal",
            "The server failed to handle this request. It has been logged; try again later.",
            vec![],
        ),
    };
    serde_json::to_value(problem(status, slug, detail.to_owned(), errors)).ok()
}

/// The document as served and checked in.
pub fn json() -> anyhow::Result<String> {
    Ok(crate::http::openapi().to_pretty_json()? + "\n")
}
