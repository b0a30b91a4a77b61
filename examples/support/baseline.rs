//! What the benchmark's figures are compared with, measured in the same run on the same
//! machine (figures on these machines drift ±40 % between runs; ratios do not):
//! - the store's own limit: raw SQLite (rusqlite, one cached INSERT per row, one transaction,
//!   the same table, indexes, pragmas and rows as the service) inserting the users and one
//!   event per user, and reading every user row back;
//! - the HTTP stack's own limit: a bare actix-web handler, loaded by `wrk` like the API.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct StoreBaseline {
    pub insert_users: Duration,
    pub insert_events: Duration,
    pub read_users: Duration,
}

impl StoreBaseline {
    pub fn insert_total(&self) -> Duration {
        self.insert_users + self.insert_events
    }
}

const USERS_TABLE: &str = "
CREATE TABLE users (
    id TEXT NOT NULL, organization_id TEXT NOT NULL, external_id TEXT, email TEXT NOT NULL,
    email_key TEXT NOT NULL, username TEXT, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    state TEXT NOT NULL, role TEXT NOT NULL, approval_process TEXT NOT NULL,
    employment_status TEXT NOT NULL, manager_id TEXT, teams TEXT NOT NULL, start_date TEXT,
    end_date TEXT, date_of_birth TEXT, gender TEXT, phone TEXT, custom_fields TEXT NOT NULL,
    upcoming_trips INTEGER NOT NULL, source_hash TEXT, search_key TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, archived_at TEXT,
    PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_by_external_id ON users (organization_id, external_id);
CREATE UNIQUE INDEX users_by_email ON users (organization_id, email_key);
CREATE TABLE sync_events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, entity TEXT NOT NULL,
    action TEXT, code TEXT, severity TEXT, field TEXT, message TEXT, changes TEXT,
    source_row INTEGER, external_id TEXT, email TEXT, first_name TEXT, last_name TEXT,
    user_id TEXT, team TEXT, search_key TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;";

/// Inserts `people` (the benchmark's records) as users and as one event each, then reads the
/// users back, with raw SQLite on a fresh file in `dir`.
pub fn measure_store(dir: &std::path::Path, people: &[Value]) -> anyhow::Result<StoreBaseline> {
    let mut conn = rusqlite::Connection::open(dir.join("baseline.db"))?;
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -32768;",
    )?;
    conn.execute_batch(USERS_TABLE)?;
    let organization = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let text = |person: &Value, field: &str| person[field].as_str().map(str::to_owned);

    let started = Instant::now();
    let transaction = conn.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?10, 'active',
             NULL, ?11, ?12, NULL, ?13, ?14, ?15, '{}', 0, ?16, ?17, ?18, ?18, NULL)",
        )?;
        for person in people {
            let email = text(person, "email").unwrap_or_default();
            insert.execute(rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                organization,
                text(person, "external_id"),
                email,
                email.to_lowercase(),
                text(person, "username"),
                text(person, "first_name"),
                text(person, "last_name"),
                text(person, "role").unwrap_or_else(|| "member".into()),
                text(person, "approval_process").unwrap_or_else(|| "none".into()),
                person["teams"].to_string(),
                text(person, "start_date"),
                text(person, "date_of_birth"),
                text(person, "gender"),
                text(person, "phone"),
                format!(
                    "{:032x}",
                    xxhash_rust::xxh3::xxh3_128(person.to_string().as_bytes())
                ),
                format!(
                    "{} {}",
                    text(person, "first_name").unwrap_or_default(),
                    email
                )
                .to_lowercase(),
                now,
            ])?;
        }
    }
    transaction.commit()?;
    let insert_users = started.elapsed();

    let run = uuid::Uuid::now_v7().to_string();
    let started = Instant::now();
    let transaction = conn.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO sync_events VALUES (?1, ?2, 'update', 'user', 'USER_CREATED', NULL, NULL,
             NULL, NULL, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, ?9)",
        )?;
        for (seq, person) in people.iter().enumerate() {
            let changes = serde_json::json!([
                {"field": "email", "old": null, "new": person["email"]},
                {"field": "first_name", "old": null, "new": person["first_name"]},
                {"field": "last_name", "old": null, "new": person["last_name"]},
            ])
            .to_string();
            insert.execute(rusqlite::params![
                run,
                seq as i64,
                changes,
                seq as i64 + 1,
                text(person, "external_id"),
                text(person, "email"),
                text(person, "first_name"),
                text(person, "last_name"),
                text(person, "last_name").unwrap_or_default().to_lowercase(),
            ])?;
        }
    }
    transaction.commit()?;
    let insert_events = started.elapsed();

    let started = Instant::now();
    let mut select = conn.prepare(
        "SELECT id, external_id, email, email_key, username, first_name, last_name, state, role,
                approval_process, manager_id, teams, start_date, date_of_birth, gender, phone,
                source_hash
         FROM users WHERE organization_id = ?1",
    )?;
    let mut rows = select.query([&organization])?;
    let mut read = 0usize;
    while let Some(row) = rows.next()? {
        let columns: Vec<Option<String>> = (0..17).map(|i| row.get(i)).collect::<Result<_, _>>()?;
        read += columns.len();
    }
    let read_users = started.elapsed();
    anyhow::ensure!(
        read == people.len() * 17,
        "the baseline read back every row"
    );
    Ok(StoreBaseline {
        insert_users,
        insert_events,
        read_users,
    })
}

/// Requests per second and latency percentiles that `wrk` measured.
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs `wrk` against `url`; `None` when wrk is not installed (`apt-get install wrk`).
pub fn wrk(url: &str, connections: u32, seconds: u32, token: Option<&str>) -> Option<Load> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let requests_per_second = text
        .lines()
        .find(|line| line.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let percentile = |label: &str| {
        text.lines()
            .find(|line| line.trim_start().starts_with(label))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(wrk_duration_ms)
            .unwrap_or(f64::NAN)
    };
    Some(Load {
        requests_per_second,
        p50_ms: percentile("50%"),
        p99_ms: percentile("99%"),
    })
}

/// `wrk` writes durations as `812.00us`, `1.23ms` or `2.01s`.
fn wrk_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// A bare actix-web server (one handler answering a short text) on a free loopback port, in
/// a thread of its own with two workers, like the service on this machine's two cores.
pub fn start_hello_server() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(|| {
                actix_web::App::new().route(
                    "/",
                    actix_web::web::get().to(|| async { "{\"status\":\"ok\"}" }),
                )
            })
            .workers(2)
            .listen(listener)?
            .run();
            server.await
        })
    });
    Ok(port)
}
