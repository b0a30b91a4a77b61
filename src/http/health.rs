//! Liveness, readiness and metrics, for orchestrators and Prometheus. No token needed.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::RunStatus;
use crate::error::{AppError, Problem};
use crate::http::metrics::QueueDepth;
use crate::http::AppState;
use crate::store::{pending_migrations, probe, runs};

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
/// Ready when the database answers, has every migration and can take writes (its disk has
/// room and it is not read-only); nothing is written by the check.
#[utoipa::path(
    operation_id = "getReadiness",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The database is reachable, migrated and writable.", body = Health, example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable, not migrated, read-only or out of disk space.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, AppError> {
    let pool = state.write_pool.clone();
    let database_url = state.database_url.clone();
    web::block(move || -> Result<(), AppError> {
        let mut conn = pool.get()?;
        let pending = pending_migrations(&mut conn).map_err(|error| {
            tracing::error!(%error, "readiness check cannot read the migration state");
            AppError::Unavailable("The database cannot be read.".into())
        })?;
        if pending > 0 {
            return Err(AppError::Unavailable(format!(
                "The database lacks {pending} migration(s); run hris-sync migrate."
            )));
        }
        probe::check_writable(&mut conn, &database_url).map_err(|why| {
            tracing::warn!(%why, "not ready: the store cannot take writes");
            AppError::Unavailable(why.to_string())
        })
    })
    .await??;
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
    let pool = state.pool.clone();
    let queue = web::block(move || queue_depths(&pool))
        .await
        .unwrap_or_default();
    let pools = [
        ("read", state.pool.state()),
        ("write", state.write_pool.state()),
    ];
    let body = state.metrics.render(&pools, &queue);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

/// The queue as `/metrics` shows it: every unfinished status, 0 when no run is in it. A store
/// that cannot be read leaves the gauges out rather than failing the scrape.
fn queue_depths(pool: &crate::store::DbPool) -> Vec<QueueDepth> {
    let rows = match pool
        .get()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| Ok(runs::queue_depths(&mut conn)?))
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "cannot read the run queue for /metrics");
            return Vec::new();
        }
    };
    let now = chrono::Utc::now();
    [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::AwaitingApproval,
    ]
    .into_iter()
    .map(|status| {
        let row = rows.iter().find(|(stored, _, _)| stored == status.as_str());
        let oldest_age = row
            .and_then(|(_, _, oldest)| oldest.as_deref())
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| (now - at.with_timezone(&chrono::Utc)).to_std().ok())
            .unwrap_or_default();
        QueueDepth {
            status: status.as_str(),
            runs: row.map_or(0, |(_, runs, _)| *runs),
            oldest_age,
        }
    })
    .collect()
}
