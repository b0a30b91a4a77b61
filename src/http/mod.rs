//! The HTTP API: one module per resource, plus what every request goes through
//! (authentication, problem+json errors, request ids and metrics).

pub mod approvals;
pub mod auth;
pub mod csv_log;
pub mod error_codes;
pub mod events;
pub mod exports;
pub mod health;
pub mod metrics;
pub mod pagination;
pub mod settings;
pub mod syncs;
pub mod users;

mod fallback;
mod observe;
mod params;
mod point_read;
mod security_headers;
mod token_cache;

pub use token_cache::TokenCache;

use std::sync::Arc;

use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::ErrorHandlers;
use actix_web::{web, App, Error};
use utoipa::OpenApi as _;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::TestHooks;
use crate::openapi::ApiDoc;
use crate::store::DbPool;
use crate::sync::worker::WorkerWaker;

pub use fallback::RouteTable;
pub use metrics::Metrics;
pub use point_read::point_read;

/// What handlers share.
pub struct AppState {
    /// Connections of requests that only read.
    pub pool: DbPool,
    /// Connections of requests that write (pushes, retries, approvals, settings,
    /// invitations): on SQLite a writer may wait seconds for a run's write lock, and it waits
    /// holding one of these, never one a read needs.
    pub write_pool: DbPool,
    /// Where the store is, for the readiness probe (the SQLite file's disk).
    pub database_url: String,
    pub waker: WorkerWaker,
    pub metrics: Arc<Metrics>,
    /// Tokens recently looked up, and the uses to record.
    pub tokens: TokenCache,
    /// How push bodies are read, and their limits.
    pub push_rules: crate::sync::push::BodyRules,
    /// Pushes received at once: a permit each (see `--max-concurrent-pushes`).
    pub receiving: Arc<tokio::sync::Semaphore>,
    /// Backpressure limits on the queue (429 past them).
    pub queue_limits: crate::config::QueueLimits,
    /// Faults tests plant (approvals apply runs on the request's thread).
    pub test_hooks: TestHooks,
}

/// Largest JSON body of the small endpoints (settings, users); pushes have their own limit.
const SMALL_JSON_LIMIT: usize = 1024 * 1024;

/// The OpenAPI document of every route, as the handlers declare it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = routes(App::new()).split_for_parts();
    crate::openapi::finish(api)
}

/// Registers every documented route.
fn routes<T>(app: App<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = Error,
        InitError = (),
    >,
{
    app.into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            scope("/v1")
                .service(syncs::push)
                .service(syncs::list)
                // Before `/syncs/{id}`, which would take `export.zip` for a run id.
                .service(exports::export_zip)
                .service(syncs::get)
                .service(syncs::retry)
                .service(approvals::approve)
                .service(approvals::reject)
                .service(csv_log::get_log_csv)
                .service(events::list)
                .service(exports::report_csv)
                .service(exports::log_json)
                .service(exports::sync_log_csv)
                .service(exports::sync_log_xlsx)
                .service(error_codes::list)
                .service(error_codes::get)
                .service(users::list)
                .service(users::invite)
                .service(users::get)
                .service(users::update)
                .service(users::revoke_invitation)
                .service(settings::get)
                .service(settings::replace)
                .service(settings::history),
        )
}

/// Builds the application of one HTTP worker.
pub fn app(
    state: web::Data<AppState>,
    routes_table: web::Data<RouteTable>,
    spec: utoipa::openapi::OpenApi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let (app, _) = routes(
        App::new()
            .app_data(state)
            .app_data(routes_table)
            .app_data(web::PayloadConfig::new(SMALL_JSON_LIMIT))
            .app_data(
                web::JsonConfig::default()
                    .limit(SMALL_JSON_LIMIT)
                    .error_handler(fallback::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(fallback::query_error))
            .app_data(web::PathConfig::default().error_handler(fallback::path_error)),
    )
    .split_for_parts();
    app.service(web::redirect("/swagger-ui", "/swagger-ui/"))
        .service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", spec))
        .default_service(web::to(fallback::not_found_or_not_allowed))
        .wrap(ErrorHandlers::new().default_handler(fallback::as_problem))
        .wrap(actix_web::middleware::from_fn(
            security_headers::security_headers,
        ))
        .wrap(actix_web::middleware::from_fn(observe::observe))
}
