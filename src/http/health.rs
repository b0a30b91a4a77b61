//! Liveness, readiness and metrics, for orchestrators and Prometheus. No token needed.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, Problem};
use crate::http::AppState;
use crate::store::pending_migrations;

/// The answer of the health and readiness probes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

/// `ok` from `/healthz`, `ready` from `/readyz`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Ready,
}

/// Is the process up?
///
/// Liveness: answers 200 while the process serves HTTP, without touching the database.
#[utoipa::path(
    operation_id = "getHealth",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The process is up.", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Can the service serve requests?
///
/// Ready when the database answers and has every migration.
#[utoipa::path(
    operation_id = "getReadiness",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The database is reachable and migrated.", body = Health, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable or not migrated.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, AppError> {
    let pool = state.pool.clone();
    let pending = web::block(move || -> Result<usize, AppError> {
        let mut conn = pool.get()?;
        pending_migrations(&mut conn).map_err(|error| {
            tracing::error!(%error, "readiness check cannot read the migration state");
            AppError::Unavailable("The database cannot be read.".into())
        })
    })
    .await??;
    if pending > 0 {
        return Err(AppError::Unavailable(format!(
            "The database lacks {pending} migration(s); run hris-sync migrate."
        )));
    }
    Ok(web::Json(Health {
        status: HealthStatus::Ready,
    }))
}

/// Prometheus metrics
///
/// Requests by route and status, request latency, run outcomes and the database pool, in the
/// Prometheus text exposition format.
#[utoipa::path(
    operation_id = "getMetrics",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text exposition format.", body = String, content_type = "text/plain; version=0.0.4",
        example = json!("# HELP hris_sync_http_requests_total HTTP requests by method, route and status.\n# TYPE hris_sync_http_requests_total counter\nhris_sync_http_requests_total{method=\"GET\",route=\"/v1/syncs\",status=\"200\"} 3\n")))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = state.metrics.render(&state.pool.state());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
