//! Headers that every response carries, because the API serves personal data (dates of birth,
//! phone numbers) and Swagger UI is where people paste tokens.
//!
//! - `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` everywhere;
//! - `Cache-Control: no-store` on everything but Swagger UI's static assets: API answers and
//!   errors must not linger in shared or browser caches;
//! - on Swagger UI, a Content-Security-Policy that its vendored assets satisfy (no inline or
//!   remote scripts; React sets inline styles and the bundle uses `data:` images) and that forbids
//!   framing (`frame-ancestors 'none'`, plus `X-Frame-Options: DENY` for older browsers).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;

/// The policy of Swagger UI's pages.
pub const SWAGGER_UI_CSP: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
frame-ancestors 'none'";

/// The policy of everything else: nothing of ours is meant to run a script or be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let is_swagger_ui = req.path().starts_with("/swagger-ui");
    let mut response = next.call(req).await?;
    let cacheable_asset = is_swagger_ui && response.status().is_success();
    apply(response.headers_mut(), is_swagger_ui, cacheable_asset);
    Ok(response)
}

fn apply(headers: &mut HeaderMap, is_swagger_ui: bool, cacheable_asset: bool) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if is_swagger_ui {
        set(headers, header::CONTENT_SECURITY_POLICY, SWAGGER_UI_CSP);
    } else {
        set(headers, header::CONTENT_SECURITY_POLICY, API_CSP);
    }
    if cacheable_asset {
        set(headers, header::CACHE_CONTROL, "public, max-age=3600");
    } else {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_answers_are_never_stored_and_never_framed() {
        let mut headers = HeaderMap::new();
        apply(&mut headers, false, false);
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
        assert!(headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }

    #[test]
    fn swagger_ui_assets_may_be_cached_but_its_errors_may_not() {
        let mut asset = HeaderMap::new();
        apply(&mut asset, true, true);
        assert_eq!(
            asset.get(header::CACHE_CONTROL).unwrap(),
            "public, max-age=3600"
        );
        assert_eq!(
            asset.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            SWAGGER_UI_CSP
        );
        let mut error = HeaderMap::new();
        apply(&mut error, true, false);
        assert_eq!(error.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }
}
