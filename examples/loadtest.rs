//! A bounded mixed load against the real release binary on 127.0.0.1, then a check that nothing
//! was lost.
//!
//!     cargo build --release && cargo run --release --example loadtest -- \
//!         --seconds 60 --connections 64 --organizations 4 --big-users 150000
//!
//! One organization (the "big tenant") pushes full syncs of `--big-users` people back to back;
//! the other organizations share `--connections` client threads that read (runs, one run, a
//! page of events, a page of users) and, one request in ten, push a small incremental batch.
//! The load stops after `--seconds` (and at most `--max-requests`); then every accepted push
//! is waited for, and the program checks that each one ended exactly once, that each
//! organization's runs started in arrival order, and that every pushed person is in the
//! directory. Prints requests, p50/p99 per endpoint, errors, how long small pushes waited to
//! start, and the server's peak memory. Exits non-zero when a check fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use reqwest::blocking::Client;
use serde_json::{json, Value};

struct Options {
    seconds: u64,
    connections: usize,
    organizations: usize,
    big_users: usize,
    max_requests: u64,
    /// Requests per second across the small tenants' connections; 0: each connection sends
    /// its next request as soon as the last one is answered.
    rate: u64,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let options = Options {
        seconds: flag(&args, "--seconds").unwrap_or(60),
        connections: flag(&args, "--connections").unwrap_or(64),
        organizations: flag(&args, "--organizations").unwrap_or(4).max(2),
        big_users: flag(&args, "--big-users").unwrap_or(150_000),
        max_requests: flag(&args, "--max-requests").unwrap_or(2_000_000),
        rate: flag(&args, "--rate").unwrap_or(0),
    };
    let server = Server::start()?;
    let outcome = run(&server, &options);
    let peak = server.peak_memory_mb();
    drop(server);
    let report = outcome?;
    println!("server peak memory (VmHWM): {peak:.0} MB");
    ensure!(
        report.failures.is_empty(),
        "checks failed:\n{}",
        report.failures.join("\n")
    );
    println!("all checks passed");
    Ok(())
}

struct Report {
    failures: Vec<String>,
}

fn run(server: &Server, options: &Options) -> anyhow::Result<Report> {
    let client = Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(options.connections + 4)
        // Below the server's 5 s keep-alive, so that a connection is never reused just as the
        // server closes it.
        .pool_idle_timeout(Duration::from_secs(4))
        .build()?;
    let tenants: Vec<Tenant> = (0..options.organizations)
        .map(|i| server.organization(&format!("tenant-{i}")))
        .collect::<anyhow::Result<_>>()?;
    // Each small tenant starts with a few people, so that reads have something to read.
    for tenant in &tenants[1..] {
        let run = push(
            &client,
            &server.base,
            tenant,
            &small_batch(&tenant.name, 0, 20),
        )?;
        tenant.accepted.lock().expect("lock").push(run);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let latencies: Arc<Mutex<BTreeMap<&'static str, Vec<f64>>>> = Arc::default();
    let errors: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let pace = match options.rate {
        0 => "as fast as answered".to_owned(),
        rate => format!("{rate} requests/s in all"),
    };
    println!(
        "load: {} s, {} connections ({pace}), {} organizations (tenant-0 pushes {} people per full sync)",
        options.seconds, options.connections, options.organizations, options.big_users
    );
    // With `--rate`, each connection has a slot every `interval` (a connection behind its
    // slots sends at once). A request's time counts from when it is sent.
    let interval = (options.rate > 0)
        .then(|| Duration::from_secs_f64(options.connections as f64 / options.rate as f64));

    std::thread::scope(|scope| {
        let big = &tenants[0];
        let big_body = big_company(options.big_users);
        {
            let (stop, client, base) = (stop.clone(), client.clone(), server.base.clone());
            let errors = errors.clone();
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match push(&client, &base, big, &big_body) {
                        Ok(id) => big.accepted.lock().expect("lock").push(id),
                        Err(error) => count_error(&errors, format!("big push: {error}")),
                    }
                    // One big push in flight at a time, as an HR tool would.
                    if let Some(id) = big.accepted.lock().expect("lock").last().cloned() {
                        let _ = wait_final(&client, &base, big, &id, deadline);
                    }
                }
            });
        }
        for worker in 0..options.connections {
            let (stop, client, base) = (stop.clone(), client.clone(), server.base.clone());
            let (requests, latencies, errors) =
                (requests.clone(), latencies.clone(), errors.clone());
            let tenant = &tenants[1 + worker % (tenants.len() - 1)];
            let max_requests = options.max_requests;
            scope.spawn(move || {
                let mut sequence = 0u64;
                // Slots spread over the first interval, so that connections do not send together.
                let mut slot = Instant::now()
                    + interval.map_or(Duration::ZERO, |i| {
                        i.mul_f64(worker as f64 / options.connections as f64)
                    });
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    if let Some(interval) = interval {
                        std::thread::sleep(slot.saturating_duration_since(Instant::now()));
                        slot += interval;
                    }
                    if requests.fetch_add(1, Ordering::SeqCst) >= max_requests {
                        stop.store(true, Ordering::SeqCst);
                        break;
                    }
                    sequence += 1;
                    let (endpoint, outcome) = one_request(&client, &base, tenant, worker, sequence);
                    match outcome {
                        Ok(elapsed) => latencies
                            .lock()
                            .expect("lock")
                            .entry(endpoint)
                            .or_default()
                            .push(elapsed),
                        Err(error) => count_error(&errors, format!("{endpoint}: {error}")),
                    }
                }
            });
        }
    });

    let total = requests.load(Ordering::SeqCst);
    println!("requests: {total}");
    for (endpoint, mut samples) in latencies.lock().expect("lock").clone() {
        samples.sort_by(f64::total_cmp);
        println!(
            "  {endpoint:<28} {:>7} requests  p50 {:>7.1} ms  p99 {:>7.1} ms",
            samples.len(),
            percentile(&samples, 0.50),
            percentile(&samples, 0.99)
        );
    }
    if let Err(error) = print_server_latency(&client, &server.base) {
        println!("  (the server's own latency figures could not be read: {error})");
    }
    // A 429 is the service's backpressure working (nothing of the push is stored), not an
    // error; this program does not retry those pushes.
    let (refused, errors): (BTreeMap<String, u64>, BTreeMap<String, u64>) = errors
        .lock()
        .expect("lock")
        .clone()
        .into_iter()
        .partition(|(error, _)| error.contains("status 429"));
    println!(
        "refused by backpressure (429 with Retry-After, nothing stored): {}",
        refused.values().sum::<u64>()
    );
    println!("errors: {}", errors.values().sum::<u64>());
    for (error, count) in &errors {
        println!("  {count} × {error}");
    }

    println!("waiting for every accepted push to finish…");
    let mut failures: Vec<String> = errors
        .iter()
        .map(|(error, count)| format!("{count} × {error}"))
        .collect();
    let settle_by = Instant::now() + Duration::from_secs(600);
    let mut waits = Waits::default();
    for tenant in &tenants {
        failures.extend(check_tenant(
            &client,
            &server.base,
            tenant,
            settle_by,
            &mut waits,
        ));
    }
    print_waits("small pushes, 202 → started", &mut waits.all);
    print_waits(
        "  of them, accepted with nothing of their organization ahead (queue_position 0)",
        &mut waits.first_in_line,
    );
    Ok(Report { failures })
}

/// How long small pushes waited between their 202 and their start.
#[derive(Default)]
struct Waits {
    all: Vec<f64>,
    first_in_line: Vec<f64>,
}

fn print_waits(what: &str, waits: &mut [f64]) {
    if waits.is_empty() {
        return;
    }
    waits.sort_by(f64::total_cmp);
    println!(
        "{what}: p50 {:.2} s, p99 {:.2} s, max {:.2} s ({} runs)",
        percentile(waits, 0.50),
        percentile(waits, 0.99),
        waits.last().copied().unwrap_or_default(),
        waits.len()
    );
}

/// One request of a small tenant's client: a read, or (one in ten) a small push.
fn one_request(
    client: &Client,
    base: &str,
    tenant: &Tenant,
    worker: usize,
    sequence: u64,
) -> (&'static str, anyhow::Result<f64>) {
    let started = Instant::now();
    let timed =
        |outcome: anyhow::Result<()>| outcome.map(|()| started.elapsed().as_secs_f64() * 1e3);
    if sequence.is_multiple_of(10) {
        let body = small_batch(&tenant.name, worker as u64 * 1_000_000 + sequence, 5);
        let outcome = push(client, base, tenant, &body).map(|id| {
            tenant.accepted.lock().expect("lock").push(id);
        });
        return ("POST /v1/syncs", timed(outcome));
    }
    let last_run = tenant.accepted.lock().expect("lock").last().cloned();
    let (endpoint, path) = match (sequence % 4, last_run) {
        (0, _) | (_, None) => ("GET /v1/syncs", "/v1/syncs?limit=20".to_owned()),
        (1, Some(id)) => ("GET /v1/syncs/{id}", format!("/v1/syncs/{id}")),
        (2, Some(id)) => (
            "GET /v1/syncs/{id}/events",
            format!("/v1/syncs/{id}/events?limit=100"),
        ),
        (_, Some(_)) => ("GET /v1/users", "/v1/users?limit=50".to_owned()),
    };
    (endpoint, timed(read(client, base, tenant, &path)))
}

/// Every accepted push of the tenant ended exactly once, runs started in arrival order, and
/// every pushed person is in the directory.
fn check_tenant(
    client: &Client,
    base: &str,
    tenant: &Tenant,
    settle_by: Instant,
    waits: &mut Waits,
) -> Vec<String> {
    let mut failures = Vec::new();
    let accepted = tenant.accepted.lock().expect("lock").clone();
    let mut finished = Vec::new();
    for id in &accepted {
        match wait_final(client, base, tenant, id, settle_by) {
            Ok(run) => finished.push(run),
            Err(error) => failures.push(format!("{}: run {id}: {error}", tenant.name)),
        }
    }
    let listed = match list_all(client, base, tenant, "/v1/syncs") {
        Ok(runs) => runs,
        Err(error) => return vec![format!("{}: cannot list runs: {error}", tenant.name)],
    };
    if listed.len() != accepted.len() {
        failures.push(format!(
            "{}: {} pushes accepted but {} runs listed",
            tenant.name,
            accepted.len(),
            listed.len()
        ));
    }
    let mut by_arrival = finished.clone();
    by_arrival.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    for pair in by_arrival.windows(2) {
        if pair[0]["started_at"].as_str() > pair[1]["started_at"].as_str() {
            failures.push(format!(
                "{}: run {} started after the later run {}",
                tenant.name, pair[0]["id"], pair[1]["id"]
            ));
        }
    }
    for run in &finished {
        let status = run["status"].as_str().unwrap_or_default();
        if status != "succeeded" {
            failures.push(format!("{}: run {} ended {status}", tenant.name, run["id"]));
        }
        if run["source"] == "load-small" {
            if let Some(wait) = seconds_between(&run["created_at"], &run["started_at"]) {
                waits.all.push(wait);
                let id = run["id"].as_str().unwrap_or_default();
                if tenant.first_in_line.lock().expect("lock").contains(id) {
                    waits.first_in_line.push(wait);
                }
            }
        }
    }
    match list_all(client, base, tenant, "/v1/users") {
        Ok(users) => {
            let expected = *tenant.people.lock().expect("lock");
            if users.len() as u64 != expected {
                failures.push(format!(
                    "{}: {} people pushed but {} users in the directory",
                    tenant.name,
                    expected,
                    users.len()
                ));
            }
        }
        Err(error) => failures.push(format!("{}: cannot list users: {error}", tenant.name)),
    }
    println!(
        "  {}: {} pushes accepted, {} finished, {} people",
        tenant.name,
        accepted.len(),
        finished.len(),
        tenant.people.lock().expect("lock")
    );
    failures
}

struct Tenant {
    name: String,
    token: String,
    /// Ids of the runs its pushes were answered with (202), in the order of the answers.
    accepted: Mutex<Vec<String>>,
    /// Distinct people pushed in accepted runs.
    people: Mutex<u64>,
    known: Mutex<HashMap<String, ()>>,
    /// Runs accepted with no run of the tenant ahead of them (`queue_position` 0): their wait
    /// is the wait for other tenants' runs only.
    first_in_line: Mutex<HashSet<String>>,
}

fn push(client: &Client, base: &str, tenant: &Tenant, body: &Value) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/v1/syncs"))
        .bearer_auth(&tenant.token)
        .json(body)
        .send()?;
    let status = response.status();
    ensure!(status.as_u16() == 202, "status {status}");
    let run: Value = response.json()?;
    if run["queue_position"] == 0 {
        if let Some(id) = run["id"].as_str() {
            let mut first = tenant.first_in_line.lock().expect("lock");
            first.insert(id.to_owned());
        }
    }
    let mut known = tenant.known.lock().expect("lock");
    let mut people = tenant.people.lock().expect("lock");
    for user in body["users"].as_array().into_iter().flatten() {
        let id = user["external_id"].as_str().unwrap_or_default().to_owned();
        if known.insert(id, ()).is_none() {
            *people += 1;
        }
    }
    run["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no run id"))
}

/// A successful answer to a GET of `path` as the tenant.
fn fetch(
    client: &Client,
    base: &str,
    tenant: &Tenant,
    path: &str,
) -> anyhow::Result<reqwest::blocking::Response> {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth(&tenant.token)
        .send()?;
    let status = response.status();
    ensure!(status.is_success(), "status {status}");
    Ok(response)
}

/// A read as a client on another machine would make it: the whole answer is received, and
/// not parsed here (the parsing would take the server's CPU on this shared machine).
fn read(client: &Client, base: &str, tenant: &Tenant, path: &str) -> anyhow::Result<()> {
    fetch(client, base, tenant, path)?.bytes()?;
    Ok(())
}

fn get(client: &Client, base: &str, tenant: &Tenant, path: &str) -> anyhow::Result<Value> {
    Ok(fetch(client, base, tenant, path)?.json()?)
}

fn list_all(
    client: &Client,
    base: &str,
    tenant: &Tenant,
    path: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_path = format!("{path}?limit=1000");
        if let Some(cursor) = &cursor {
            page_path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(client, base, tenant, &page_path)?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

fn wait_final(
    client: &Client,
    base: &str,
    tenant: &Tenant,
    id: &str,
    deadline: Instant,
) -> anyhow::Result<Value> {
    loop {
        let run = get(client, base, tenant, &format!("/v1/syncs/{id}"))?;
        let status = run["status"].as_str().unwrap_or_default();
        if !matches!(status, "pending" | "running") {
            return Ok(run);
        }
        ensure!(Instant::now() < deadline, "still {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn small_batch(tenant: &str, first: u64, size: u64) -> Value {
    let users: Vec<Value> = (first..first + size)
        .map(|i| {
            json!({"external_id": format!("{tenant}-{i}"), "email": format!("{tenant}.{i}@example.com"),
                   "first_name": "Load", "last_name": format!("Person{i}"), "start_date": "2024-01-15"})
        })
        .collect();
    json!({"source": "load-small", "mode": "incremental", "users": users})
}

fn big_company(size: usize) -> Value {
    let users: Vec<Value> = (0..size)
        .map(|i| {
            json!({"external_id": format!("B{i}"), "email": format!("b{i}@big.example.com"),
                   "first_name": "Big", "last_name": format!("Employee{i}"), "start_date": "2023-06-01",
                   "phone": "+33 612345678", "date_of_birth": "04/12/1988", "gender": "F",
                   "teams": [format!("Team {}", i % 50)]})
        })
        .collect();
    json!({"source": "load-big", "mode": "full", "users": users})
}

fn seconds_between(from: &Value, to: &Value) -> Option<f64> {
    let from = chrono::DateTime::parse_from_rfc3339(from.as_str()?).ok()?;
    let to = chrono::DateTime::parse_from_rfc3339(to.as_str()?).ok()?;
    Some((to - from).num_milliseconds() as f64 / 1e3)
}

fn count_error(errors: &Mutex<BTreeMap<String, u64>>, error: String) {
    *errors.lock().expect("lock").entry(error).or_default() += 1;
}

/// The share of each read route's requests that took the server over 100 ms, from its own
/// latency histogram (`/metrics`): what the server spent, without the time requests waited
/// for this program's threads on the shared CPU.
fn print_server_latency(client: &Client, base: &str) -> anyhow::Result<()> {
    let text = client.get(format!("{base}/metrics")).send()?.text()?;
    let sample = |name: &str, route: &str, extra: &str| -> Option<f64> {
        text.lines()
            .find(|line| {
                line.contains(name)
                    && line.contains("method=\"GET\"")
                    && line.contains(&format!("route=\"{route}\""))
                    && line.contains(extra)
            })
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    };
    for route in [
        "/v1/syncs",
        "/v1/syncs/{id}",
        "/v1/syncs/{id}/events",
        "/v1/users",
    ] {
        let total = sample("http_request_duration_seconds_count", route, "");
        let fast = sample("http_request_duration_seconds_bucket", route, "le=\"0.1\"");
        if let (Some(total), Some(fast)) = (total, fast) {
            println!(
                "  server side, GET {route:<22} {:.2} % of {total} over 100 ms (this program's polling included)",
                (total - fast) * 100.0 / total.max(1.0)
            );
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let at = args.iter().position(|arg| arg == name)?;
    args.get(at + 1)?.parse().ok()
}

/// The release binary, serving on a free loopback port with its own SQLite file.
struct Server {
    child: Child,
    base: String,
    database_url: String,
    binary: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> anyhow::Result<Server> {
        // target/release/examples/loadtest → target/release/hris-sync
        let binary = std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|release| release.join("hris-sync"))
            .filter(|path| path.exists())
            .context("build the server first: cargo build --release")?;
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("load.db").display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(&binary)
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &database_url,
            ])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("piped stdout")?;
        // Drain the server's stdout in the background (the bootstrap banner).
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/healthz")).send().is_err() {
            ensure!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Server {
            child,
            base,
            database_url,
            binary,
            _dir: dir,
        })
    }

    fn organization(&self, name: &str) -> anyhow::Result<Tenant> {
        let output = Command::new(&self.binary)
            .args(["org", "create", name, "--database-url", &self.database_url])
            .output()?;
        ensure!(
            output.status.success(),
            "org create: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout)?;
        Ok(Tenant {
            name: name.to_owned(),
            token: created["token"].as_str().context("token")?.to_owned(),
            accepted: Mutex::default(),
            people: Mutex::default(),
            known: Mutex::default(),
            first_in_line: Mutex::default(),
        })
    }

    fn peak_memory_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("VmHWM:"))
                    .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
