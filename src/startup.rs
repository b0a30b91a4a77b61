//! Builds the service: pool and migrations, the first organization, crash recovery, the run
//! worker, and the HTTP server bound to its address.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, HttpServer};
use anyhow::Context;

use crate::config::Config;
use crate::domain::RunStatus;
use crate::http::{self, AppState, Metrics, RouteTable, TokenCache};
use crate::store::{self, organizations, runs, DbPool};
use crate::sync::push::BodyRules;
use crate::sync::worker::{Worker, WorkerSettings};

/// The organization and admin token created on an empty database.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub organization_id: String,
    pub admin_token: String,
}

/// Connections of the run worker's own pool: the run, its lease heartbeat, and the WAL
/// checkpointer.
pub const WORKER_POOL_SIZE: u32 = 3;
/// Connections of the requests that write. On SQLite one writer at a time holds the lock, so a
/// few are enough; the others wait for one, not for a read's connection.
pub const WRITE_POOL_SIZE: u32 = 4;

pub struct Application {
    server: Server,
    port: u16,
    worker: Worker,
    pool: DbPool,
    pub bootstrap: Option<Bootstrap>,
}

impl Application {
    /// Must be called inside an actix/tokio runtime: the server is started (not yet awaited).
    pub fn build(config: Config) -> anyhow::Result<Application> {
        let pool = store::connect_with(
            &config.database_url,
            &store::PoolOptions {
                size: config.pool_size,
                timeout: config.pool_timeout,
                statement_timeout: config.statement_timeout,
            },
        )?;
        let mut conn = pool.get().context("cannot get a database connection")?;
        let bootstrap = organizations::bootstrap(&mut conn)
            .context("cannot create the first organization")?
            .map(|created| Bootstrap {
                organization_id: created.organization.id,
                admin_token: created.admin_token,
            });
        // SQLite: one instance per database file, so a run left `running` is this process's,
        // from before a crash: queued again at once. PostgreSQL: other instances may be
        // processing their runs right now; a dead instance's runs are taken over when their
        // lease expires (see the worker).
        let interrupted = match &*conn {
            store::DbConn::Sqlite(_) => {
                runs::recover_interrupted(&mut conn).context("cannot recover interrupted runs")?
            }
            store::DbConn::Postgres(_) => Vec::new(),
        };
        for (run_id, status) in interrupted {
            match status {
                RunStatus::Pending => {
                    tracing::warn!(%run_id, "run interrupted by a stop: queued again")
                }
                _ => tracing::error!(%run_id, "run interrupted too many times: failed"),
            }
        }
        let existing = match &bootstrap {
            Some(_) => Vec::new(),
            None => organizations::list(&mut conn).context("cannot list the organizations")?,
        };
        drop(conn);

        // The worker has its own connections, so that requests cannot starve a run of one,
        // nor a run (and its heartbeat) take the requests' connections.
        // Pushes are spooled there as they arrive: a directory that cannot take a file would
        // fail every push, so it fails the start instead.
        tempfile::tempfile_in(&config.spool_dir).with_context(|| {
            format!(
                "cannot write a temporary file in the spool directory {} (--spool-dir, HRIS_SYNC_SPOOL_DIR): it must exist and be writable",
                config.spool_dir.display()
            )
        })?;
        let own_pool = |size| {
            store::connect_with(
                &config.database_url,
                &store::PoolOptions {
                    size,
                    timeout: config.pool_timeout,
                    statement_timeout: config.statement_timeout,
                },
            )
        };
        let worker_pool = own_pool(WORKER_POOL_SIZE)?;
        let write_pool = own_pool(WRITE_POOL_SIZE)?;
        let metrics = Arc::new(Metrics::new()?);
        let worker = Worker::start(
            worker_pool,
            WorkerSettings {
                poll_interval: config.worker_poll_interval,
                claimant: runs::Claimant {
                    instance_id: config.instance_id.clone(),
                    lease: config.run_lease,
                },
                max_run_attempts: config.max_run_attempts,
                retry_backoff: config.retry_backoff,
                hooks: config.test_hooks.clone(),
                recognised_unchanged: metrics.recognised_unchanged(),
            },
        )
        .context("cannot start the run worker")?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            write_pool: write_pool.clone(),
            database_url: config.database_url.clone(),
            waker: worker.waker(),
            metrics,
            tokens: TokenCache::start(
                write_pool.clone(),
                config.token_cache_ttl,
                config.token_use_flush_interval,
            )
            .context("cannot start the token bookkeeping")?,
            push_rules: BodyRules {
                max_bytes: u64::try_from(config.body_limit_bytes).unwrap_or(u64::MAX),
                max_records: config.max_records_per_push,
                spool_dir: config.spool_dir.clone(),
            },
            receiving: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_pushes)),
            queue_limits: config.queue_limits,
            test_hooks: config.test_hooks.clone(),
        });
        let spec = http::openapi();
        let routes = web::Data::new(RouteTable::from_openapi(&spec));

        let listener = TcpListener::bind(&config.bind)
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let mut server =
            HttpServer::new(move || http::app(state.clone(), routes.clone(), spec.clone()))
                .listen(listener)?
                .shutdown_timeout(30);
        if let Some(workers) = config.http_workers {
            server = server.workers(workers);
        }
        let server = server.run();

        if config.announce_bootstrap_token {
            match &bootstrap {
                Some(bootstrap) => announce(bootstrap, &config.bind, port),
                None => println!("{}", token_hint(&existing)),
            }
        }
        tracing::info!(bind = %config.bind, port, instance_id = %config.instance_id, "hris-sync is listening");
        Ok(Application {
            server,
            port,
            worker,
            pool,
            bootstrap,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Serves until SIGTERM/SIGINT (or a handle's stop), then lets the run in progress finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        tracing::info!("HTTP server stopped; waiting for the run in progress");
        let worker = self.worker;
        web::block(move || worker.stop()).await?;
        Ok(())
    }
}

/// The line a start without a new token prints: tokens are shown only once, so say how to
/// get another.
pub fn token_hint(existing: &[crate::store::models::OrganizationRow]) -> String {
    let org = match existing {
        [only] if !only.name.contains(char::is_whitespace) => only.name.clone(),
        [only] => format!("{:?}", only.name),
        _ => "NAME".to_owned(),
    };
    let list = if existing.len() > 1 {
        " (`hris-sync org list` shows the names)"
    } else {
        ""
    };
    format!(
        "No new API token: tokens are shown once, when created. To get one: hris-sync token create --org {org} --scope admin{list}"
    )
}

fn announce(bootstrap: &Bootstrap, bind: &str, port: u16) {
    let host = bind.rsplit_once(':').map_or("127.0.0.1", |(host, _)| host);
    let host = if host == "0.0.0.0" || host == "[::]" {
        "127.0.0.1"
    } else {
        host
    };
    let base = format!("http://{host}:{port}");
    let token = &bootstrap.admin_token;
    println!(
        "\nCreated the organization \"default\" ({}).\nIts admin token, shown only this once:\n\n    {token}\n\n\
Try it:\n    curl -H \"Authorization: Bearer {token}\" {base}/v1/syncs\n\
Swagger UI: {base}/swagger-ui/ (click Authorize and paste the token)\n\
Lost it? Tokens are stored hashed; make another: hris-sync token create --org default --scope admin\n",
        bootstrap.organization_id
    );
}
