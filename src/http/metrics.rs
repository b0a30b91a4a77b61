//! Prometheus metrics: requests by route and status, latency, database pool state.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    runs_waiting: IntGaugeVec,
    oldest_run_age: prometheus::GaugeVec,
    /// Incremented by the run worker (see [`Metrics::recognised_unchanged`]).
    recognised_unchanged: IntCounter,
}

/// Runs in an unfinished state, as `/metrics` reports them.
pub struct QueueDepth {
    pub status: &'static str,
    pub runs: i64,
    /// Age of the oldest run in that state.
    pub oldest_age: Duration,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new_custom(Some("hris_sync".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by pool (read: requests that read; write: pushes, approvals, settings and other requests that write) and state (idle, in_use).",
            ),
            &["pool", "state"],
        )?;
        let runs_waiting = IntGaugeVec::new(
            Opts::new(
                "sync_runs",
                "Sync runs not finished yet, by status (pending, running, awaiting_approval).",
            ),
            &["status"],
        )?;
        let oldest_run_age = prometheus::GaugeVec::new(
            Opts::new(
                "sync_run_oldest_age_seconds",
                "Age of the oldest sync run in each unfinished status (0 when none).",
            ),
            &["status"],
        )?;
        let recognised_unchanged = IntCounter::new(
            "sync_runs_recognised_unchanged_total",
            "Runs of this instance finished as unchanged without their records being parsed: every record was the text last applied cleanly to a user of its own (see the README, \"Unchanged pushes\").",
        )?;
        registry.register(Box::new(recognised_unchanged.clone()))?;
        registry.register(Box::new(runs_waiting.clone()))?;
        registry.register(Box::new(oldest_run_age.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            pool,
            runs_waiting,
            oldest_run_age,
            recognised_unchanged,
        })
    }

    /// The counter of runs recognised as unchanged, for the run worker to increment.
    pub fn recognised_unchanged(&self) -> IntCounter {
        self.recognised_unchanged.clone()
    }

    /// `route` is the matched pattern (`/v1/syncs/{id}`), never the raw path, to keep the
    /// number of series bounded.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the pool state and the queue read now.
    pub fn render(&self, pools: &[(&str, diesel::r2d2::State)], queue: &[QueueDepth]) -> String {
        for depth in queue {
            self.runs_waiting
                .with_label_values(&[depth.status])
                .set(depth.runs);
            self.oldest_run_age
                .with_label_values(&[depth.status])
                .set(depth.oldest_age.as_secs_f64());
        }
        for (name, pool) in pools {
            let idle = i64::from(pool.idle_connections);
            self.pool.with_label_values(&[name, "idle"]).set(idle);
            self.pool
                .with_label_values(&[name, "in_use"])
                .set(i64::from(pool.connections) - idle);
        }
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
