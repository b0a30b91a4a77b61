//! Liveness, readiness and metrics, for orchestrators and Prometheus. No token needed.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::RunStatus;
use crate::error::{AppError, Problem};
use crate::http::metrics::QueueDepth;
use crate::http::AppState;
use crate::store::{pending_migrations, probe, runs};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Is the process up?
#[utoipa::path(
    tag = "operations",
    security(()),
    responses((status = 200, description = "The process is up.", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

/// Can the service serve requests?
///
/// Ready when the database answers, has every migration and can take writes (its disk has
/// room and it is not read-only); nothing is written by the check.
#[utoipa::path(
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The database is reachable and migrated.", body = Health),
        (status = 503, description = "The database is unreachable, not migrated, read-only or out of disk space.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, AppError> {
    let pool = state.pool.clone();
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
        status: "ready".into(),
    }))
}

/// Prometheus metrics
#[utoipa::path(
    tag = "operations",
    security(()),
    responses((status = 200, description = "Prometheus text exposition format.", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let queue = web::block(move || queue_depths(&pool))
        .await
        .unwrap_or_default();
    let body = state.metrics.render(&state.pool.state(), &queue);
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
