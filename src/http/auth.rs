//! Bearer-token authentication and scopes.
//!
//! A handler states what it needs by its argument type: [`ReadAccess`], [`WriteAccess`] or
//! [`AdminAccess`]. Each resolves the token to its organization; every query of the handler
//! is then scoped to that organization, so another organization's resource is a 404.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::domain::Scope;
use crate::error::AppError;
use crate::http::AppState;
use crate::store::tokens;

/// The organization and scope behind a request's token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub organization_id: String,
    pub token_id: String,
    pub scope: Scope,
}

async fn authenticate(req: &HttpRequest, required: Scope) -> Result<Caller, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state is missing")))?
        .clone();
    let token_hash = tokens::hash_secret(&bearer_token(req)?);
    let token = match state.tokens.get(&token_hash) {
        Some(token) => token,
        None => {
            let pool = state.pool.clone();
            let found = web::block(move || -> Result<_, AppError> {
                let mut conn = pool.get()?;
                Ok(tokens::find_live_by_hash(&mut conn, &token_hash)?)
            })
            .await??
            .ok_or_else(|| {
                AppError::Unauthorized("The token is unknown or has been revoked.".into())
            })?;
            state.tokens.put(found.clone());
            found
        }
    };
    state.tokens.record_use(&token);
    let scope: Scope = token
        .scope
        .parse()
        .map_err(|e: String| AppError::Internal(anyhow::anyhow!("stored token scope: {e}")))?;
    tracing::Span::current().record("organization_id", token.organization_id.as_str());
    if !scope.grants(required) {
        return Err(AppError::Forbidden(format!(
            "This request needs a token with the {required} scope; this token has {scope}."
        )));
    }
    Ok(Caller {
        organization_id: token.organization_id,
        token_id: token.id,
        scope,
    })
}

fn bearer_token(req: &HttpRequest) -> Result<String, AppError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        AppError::Unauthorized("Send an API token: Authorization: Bearer <token>.".into())
    })?;
    let text = value.to_str().map_err(|_| {
        AppError::Unauthorized("The Authorization header is not readable text.".into())
    })?;
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AppError::Unauthorized(
            "The Authorization header must be of the form: Bearer <token>.".into(),
        ));
    }
    Ok(token.to_owned())
}

macro_rules! access {
    ($(#[$meta:meta])* $name:ident, $scope:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequest for $name {
            type Error = AppError;
            type Future = Pin<Box<dyn Future<Output = Result<$name, AppError>>>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let req = req.clone();
                Box::pin(async move { authenticate(&req, $scope).await.map($name) })
            }
        }

        impl std::ops::Deref for $name {
            type Target = Caller;
            fn deref(&self) -> &Caller {
                &self.0
            }
        }
    };
}

access!(
    /// Any valid token (`sync:read` and up): reads.
    ReadAccess,
    Scope::SyncRead
);
access!(
    /// `sync:write` and up: pushes and retries.
    WriteAccess,
    Scope::SyncWrite
);
access!(
    /// `admin`: approvals, settings, changes to users.
    AdminAccess,
    Scope::Admin
);
