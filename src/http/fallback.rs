//! Errors that do not come from a handler, turned into problem+json: extractor failures,
//! unknown paths, wrong methods, and any other plain 4xx/5xx actix produces by itself.

use actix_web::body::EitherBody;
use actix_web::dev::{ResourceDef, ServiceResponse};
use actix_web::error::{
    InternalError, JsonPayloadError, PathError, PayloadError, QueryPayloadError,
};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::{problem, problem_response, AppError, PROBLEM_JSON};

/// Which methods each documented path accepts, to answer 405 with `Allow`.
pub struct RouteTable(Vec<(ResourceDef, Vec<Method>)>);

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> RouteTable {
        let mut rows: Vec<(ResourceDef, Vec<Method>)> = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (&item.get, Method::GET),
                    (&item.put, Method::PUT),
                    (&item.post, Method::POST),
                    (&item.delete, Method::DELETE),
                    (&item.patch, Method::PATCH),
                ]
                .into_iter()
                .filter(|(operation, _)| operation.is_some())
                .map(|(_, method)| method)
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        rows.push((
            ResourceDef::new("/api-docs/openapi.json"),
            vec![Method::GET],
        ));
        RouteTable(rows)
    }

    /// The methods of the paths matching `path`; a path without parameters (the literal
    /// `/v1/users/invitations`) wins over a pattern (`/v1/users/{id}`), as in routing.
    fn allowed(&self, path: &str) -> Vec<&'static str> {
        let literal = self
            .0
            .iter()
            .any(|(definition, _)| definition.pattern() == Some(path));
        let mut allowed: Vec<&'static str> = Vec::new();
        for (definition, methods) in &self.0 {
            let matches = if literal {
                definition.pattern() == Some(path)
            } else {
                definition.is_match(path)
            };
            if matches {
                for method in methods {
                    let name = method_name(method);
                    if !allowed.contains(&name) {
                        allowed.push(name);
                    }
                }
            }
        }
        allowed
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OPTIONS",
    }
}

/// The app's default service: a known path with the wrong method is 405, anything else 404.
pub async fn not_found_or_not_allowed(
    req: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<HttpResponse, AppError> {
    let allow = table.allowed(req.path());
    if allow.is_empty() || req.path().starts_with("/swagger-ui/") {
        Err(AppError::NotFound(format!(
            "There is nothing at {}.",
            req.path()
        )))
    } else {
        Err(AppError::MethodNotAllowed { allow })
    }
}

pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let app_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => {
            AppError::PayloadTooLarge("The body is over the size limit of this endpoint.".into())
        }
        JsonPayloadError::ContentType => {
            AppError::UnsupportedMediaType("Send the body as application/json.".into())
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => AppError::unprocessable(
            "The body does not have the expected fields.",
            vec![crate::error::FieldError::new("", inner.to_string())],
        ),
        JsonPayloadError::Deserialize(inner) => {
            AppError::bad_request(format!("The body is not valid JSON: {inner}."))
        }
        other => AppError::bad_request(format!("The body cannot be read: {other}.")),
    };
    let response = app_error.error_response();
    InternalError::from_response(error, response).into()
}

pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        QueryPayloadError::Deserialize(inner) => {
            format!("A query parameter is not valid: {inner}.")
        }
        other => format!("The query string is not valid: {other}."),
    };
    let response = AppError::bad_request(detail).error_response();
    InternalError::from_response(error, response).into()
}

pub fn path_error(error: PathError, _req: &HttpRequest) -> actix_web::Error {
    let response =
        AppError::bad_request(format!("A path parameter is not valid: {error}.")).error_response();
    InternalError::from_response(error, response).into()
}

/// Rewrites any 4xx/5xx that is not already problem+json (a body over the limit, say),
/// keeping the status and the headers that matter.
pub fn as_problem<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "The body is over the size limit of this endpoint.".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "The body's content type is not accepted here.".to_owned()
        }
        status if status.is_server_error() => {
            tracing::error!(%status, "a response without problem details was replaced");
            "The server failed to handle this request. It has been logged; try again later."
                .to_owned()
        }
        status => res
            .response()
            .error()
            .map(|e| e.to_string())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned()),
    };
    let slug = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
        .replace(' ', "-");
    let (req, old) = res.into_parts();
    let mut new = problem_response(&problem(status, &slug, detail, Vec::new()));
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = old.headers().get(&name) {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let response: ServiceResponse<EitherBody<B>> =
        ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}
