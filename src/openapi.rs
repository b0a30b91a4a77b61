//! The OpenAPI document: what the handlers declare, plus the API's description and its
//! bearer-token security scheme. `hris-sync openapi` prints it; `openapi/openapi.json` is that
//! output, checked in and compared by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::SecurityRequirement;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hris-sync",
        description = "Keeps a company's user directory in step with its HR system. HR tools push \
batches of employee records; every push becomes a sync run whose report lists each update applied \
and each issue found, with a code and the steps that fix it.\n\n\
Authenticate with `Authorization: Bearer <token>`. Scopes nest: `sync:read` (every GET) ⊂ \
`sync:write` (pushes) ⊂ `admin` (changes to users). Errors are RFC 9457 `application/problem+json`. \
Lists answer `{\"items\": [...], \"next_cursor\": ...}`; pass `next_cursor` back as `cursor`.",
        license(name = "MIT"),
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

/// The document as served and checked in.
pub fn json() -> anyhow::Result<String> {
    Ok(crate::http::openapi().to_pretty_json()? + "\n")
}
