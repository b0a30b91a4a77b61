//! `spawn_app`: the real server on port 0 with its own fresh database, and a blocking HTTP
//! client speaking to it.
//!
//! The database is a SQLite file in a temporary directory, or, when
//! `HRIS_SYNC_TEST_POSTGRES_URL` names a PostgreSQL server (`scripts/with-postgres cargo test`
//! sets it), a PostgreSQL database of its own, copied from a migrated template.

use std::path::PathBuf;
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use hris_sync::config::Config;
use hris_sync::startup::Application;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    pub organization_id: String,
    pub database_url: String,
    pub db_path: PathBuf,
    pub client: Client,
    server: Option<(ServerHandle, JoinHandle<()>)>,
    _database: Option<TestDatabase>,
}

/// The environment variable naming the PostgreSQL server to test against (any database of it:
/// each test gets a database of its own).
pub const POSTGRES_URL_VAR: &str = "HRIS_SYNC_TEST_POSTGRES_URL";

/// The PostgreSQL server the suite runs against, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh, empty database for one test, removed when dropped.
pub enum TestDatabase {
    Sqlite {
        url: String,
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        server_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// A new database on the backend the suite runs against.
    pub fn new() -> TestDatabase {
        match postgres_url() {
            Some(server_url) => TestDatabase::postgres(server_url),
            None => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("hris-sync.db");
                TestDatabase::Sqlite {
                    url: format!("sqlite://{}", path.display()),
                    path,
                    _dir: dir,
                }
            }
        }
    }

    /// A copy of the migrated template: `CREATE DATABASE … TEMPLATE` copies files, which is
    /// much faster than migrating every test's database.
    fn postgres(server_url: String) -> TestDatabase {
        use diesel::connection::SimpleConnection;
        let template = postgres_template(&server_url);
        let name = format!("hris_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = postgres_admin(&server_url);
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
            ))
            .expect("test database created from the template");
        TestDatabase::Postgres {
            url: with_database(&server_url, &name),
            server_url,
            name,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        if let TestDatabase::Postgres {
            server_url, name, ..
        } = self
        {
            // Best effort: the cluster of a CI run is thrown away anyway.
            if let Ok(mut admin) = try_postgres_admin(server_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The URL with its database name replaced.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

fn try_postgres_admin(server_url: &str) -> diesel::ConnectionResult<diesel::PgConnection> {
    use diesel::Connection;
    diesel::PgConnection::establish(server_url)
}

fn postgres_admin(server_url: &str) -> diesel::PgConnection {
    try_postgres_admin(server_url)
        .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {server_url}: {error}"))
}

/// The migrated template database of this test process, created on first use. Its name is
/// unique to the process, so that two suites on one server do not share (or drop) it.
fn postgres_template(server_url: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use diesel::connection::SimpleConnection;
        let name = format!(
            "hris_template_{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        postgres_admin(server_url)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("template database created");
        // Migrates it; the pool (and its connections) end here, since a template must have
        // no session open when it is copied.
        hris_sync::store::connect(&with_database(server_url, &name), 1)
            .expect("template database migrated");
        name
    })
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

/// Starts a server on a fresh database, after `customize` has adjusted its configuration.
pub fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::new();
    let mut app = start(database.url(), customize);
    if let TestDatabase::Sqlite { path, .. } = &database {
        app.db_path = path.clone();
    }
    app._database = Some(database);
    app
}

/// Starts a server on an existing database (a restart).
pub fn start(database_url: &str, customize: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::new("127.0.0.1:0", database_url);
    config.http_workers = Some(2);
    config.pool_size = 4;
    config.announce_bootstrap_token = false;
    config.worker_poll_interval = Duration::from_millis(200);
    customize(&mut config);
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = match Application::build(config) {
                Ok(app) => app,
                Err(error) => {
                    sender
                        .send(Err(format!("{error:#}")))
                        .expect("test is waiting");
                    return;
                }
            };
            let started = (app.port(), app.handle(), app.bootstrap.clone());
            sender.send(Ok(started)).expect("test is waiting");
            app.run_until_stopped().await.expect("server ran");
        })
    });
    let (port, handle, bootstrap) = receiver
        .recv()
        .expect("server thread answers")
        .expect("server starts");
    let (admin_token, organization_id) = bootstrap
        .map(|b| (b.admin_token, b.organization_id))
        .unwrap_or_default();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        admin_token,
        organization_id,
        database_url: database_url.to_owned(),
        db_path: PathBuf::new(),
        client: Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        server: Some((handle, thread)),
        _database: None,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would, and waits for it (and its run worker) to end.
    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
            thread.join().expect("server thread ends");
        }
    }

    /// Takes the database, so that it outlives this app.
    pub fn keep_database(&mut self) -> TestDatabase {
        self._database.take().expect("database")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get_as(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .expect("request sent")
    }

    pub fn get(&self, path: &str) -> Response {
        self.get_as(&self.admin_token, path)
    }

    /// GET that must succeed; its JSON body.
    pub fn get_json(&self, path: &str) -> Value {
        let response = self.get(path);
        let status = response.status();
        let body: Value = response.json().expect("JSON body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// `PATCH /v1/users/{id}` with the user's upcoming trips, which must succeed.
    pub fn set_upcoming_trips(&self, user_id: &str, trips: i64) {
        let response = self
            .request(reqwest::Method::PATCH, &format!("/v1/users/{user_id}"))
            .json(&json!({"upcoming_trips": trips}))
            .send()
            .expect("PATCH");
        assert_eq!(response.status().as_u16(), 200, "upcoming trips set");
    }

    /// `GET /metrics` (no token): the Prometheus text.
    pub fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .expect("metrics");
        assert!(response.status().is_success(), "GET /metrics");
        response.text().expect("text")
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub fn post_json_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .expect("request sent")
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post_json_as(&self.admin_token, path, body)
    }

    /// Pushes records and returns the accepted run.
    pub fn push(&self, mode: &str, users: Value) -> Value {
        self.push_body(&json!({"source": "test", "mode": mode, "users": users}))
    }

    pub fn push_body(&self, body: &Value) -> Value {
        let response = self.post_json("/v1/syncs", body);
        assert_eq!(response.status().as_u16(), 202, "push accepted");
        response.json().expect("run")
    }

    /// Pushes records and waits for the run to end.
    pub fn sync(&self, mode: &str, users: Value) -> Value {
        let run = self.push(mode, users);
        self.wait_for_run(run["id"].as_str().expect("run id"))
    }

    /// Polls a run until it reaches a final status.
    pub fn wait_for_run(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let run = self.get_json(&format!("/v1/syncs/{id}"));
            let status = run["status"].as_str().unwrap_or("").to_owned();
            if !matches!(status.as_str(), "pending" | "running") {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every event of a run (following cursors), filtered by a query string.
    pub fn events(&self, run_id: &str, query: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/syncs/{run_id}/events?limit=1000&{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get_json(&path);
            events.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return events,
            }
        }
    }

    /// Every user of the directory, following cursors.
    pub fn users(&self, query: &str) -> Vec<Value> {
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/users?limit=1000&{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get_json(&path);
            users.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return users,
            }
        }
    }

    /// Creates a token of `scope` in this app's organization.
    pub fn token(&self, scope: &str) -> String {
        self.token_for(&self.organization_id, scope)
    }

    pub fn token_for(&self, organization_id: &str, scope: &str) -> String {
        let mut conn = hris_sync::store::connect(&self.database_url, 1)
            .expect("db")
            .get()
            .expect("conn");
        let scope = scope.parse().expect("scope");
        hris_sync::store::tokens::create(&mut conn, organization_id, scope, "test")
            .expect("token")
            .1
    }

    /// Creates another organization; returns its id and admin token.
    pub fn other_organization(&self) -> (String, String) {
        let mut conn = hris_sync::store::connect(&self.database_url, 1)
            .expect("db")
            .get()
            .expect("conn");
        let created =
            hris_sync::store::organizations::create(&mut conn, "other").expect("organization");
        (created.organization.id, created.admin_token)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A valid record; tweak it with `with`.
pub fn person(external_id: &str) -> Value {
    json!({
        "external_id": external_id,
        "email": format!("{}@example.com", external_id.to_lowercase()),
        "first_name": "First",
        "last_name": format!("Last{external_id}"),
        "start_date": "2024-01-15",
    })
}

pub fn with(mut record: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().expect("object").iter() {
        record[key] = value.clone();
    }
    record
}

/// Asserts a problem+json response with this status, and returns its body.
pub fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().expect("problem body");
    assert_eq!(body["status"], status, "{body}");
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
    body
}

/// The real `hris-sync` binary serving a database, for tests that kill or signal the process.
pub struct BinaryServer {
    pub child: std::process::Child,
    pub base: String,
    /// The admin token, when this start created the organization.
    pub token: Option<String>,
}

impl BinaryServer {
    pub fn start(database_url: &str) -> BinaryServer {
        BinaryServer::start_with_env(database_url, &[])
    }

    /// [`BinaryServer::start`] with more environment variables (`HRIS_SYNC_INSTANCE_ID`…).
    pub fn start_with_env(database_url: &str, env: &[(&str, &str)]) -> BinaryServer {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hris-sync"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .env("RUST_LOG", "info")
            .env("HRIS_SYNC_LOG_FORMAT", "json")
            // A killed server's run is taken over (PostgreSQL) three seconds after its last
            // heartbeat rather than thirty.
            .env("HRIS_SYNC_RUN_LEASE", "3")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // The listening line is logged on stderr; the bootstrap token, if any, on stdout first.
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let port = stderr
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let value: Value = serde_json::from_str(&line).ok()?;
                (value["fields"]["message"] == "hris-sync is listening")
                    .then(|| value["fields"]["port"].as_u64())
                    .flatten()
            })
            .expect("the server logs its port");
        std::thread::spawn(move || for _ in stderr {});
        // stdout holds the bootstrap announcement only on a first start: read it aside.
        let (lines_sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = lines_sender.send(line);
            }
        });
        let mut token = None;
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            if let Some(found) = line.split_whitespace().find(|w| w.starts_with("hsk_")) {
                token.get_or_insert_with(|| found.trim_matches('"').to_owned());
            }
            if line.starts_with("Swagger UI:") {
                break;
            }
        }
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/healthz")).send().is_err() {
            assert!(Instant::now() < deadline, "the server does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        BinaryServer { child, base, token }
    }

    /// SIGKILL: no shutdown of any kind, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().expect("killed");
        self.child.wait().expect("reaped");
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
