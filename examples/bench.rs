//! Measures a sync end to end against a real server on a temporary SQLite file, or on the
//! database `--database-url` names (it must be empty: a PostgreSQL one, for instance).
//!
//!     cargo run --release --example bench -- --users 100000
//!     cargo run --release --example bench -- --users 100000 --csv
//!     scripts/with-postgres sh -c 'cargo run --release --example bench -- \
//!         --database-url "$HRIS_SYNC_TEST_POSTGRES_URL"'
//!
//! The server runs in a child process (this program re-executed with `--serve`), so that its
//! peak memory is its own. Prints: seconds from POST to finished for a first full sync,
//! seconds for re-pushing the same records (all unchanged) the moment the first sync is seen
//! finished and again once the server has settled, for a re-push where 1,000 people changed, records/s, the server's peak memory, the latency of the report endpoint on the
//! first run, and for each export of that run (report.csv, log.json, the period sync log as CSV
//! and XLSX): time to the first byte, total time, size, and how much the server's resident
//! memory grew while it streamed. With `--csv` the same people are uploaded as a CSV file, and
//! the download of the first run's log.csv is timed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/baseline.rs"]
mod baseline;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve(&args[2]);
    }
    let sizes = sizes_flag(&args)?;
    // `--csv`: the same people as a CSV upload.
    let csv = args.iter().any(|a| a == "--csv");
    if sizes.len() > 1 {
        return scale_curve(&sizes, csv);
    }
    let users = sizes[0];
    let dir = tempfile::tempdir()?;
    let database_url = text_flag(&args, "--database-url")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let backend = hris_sync::store::Backend::from_url(&database_url)?;

    let Server {
        mut child,
        base,
        token,
        client,
    } = Server::start(&database_url)?;
    let mut people = company(users);
    let push_of = |people: &[Value]| Push::full_sync(people, csv);
    let push = push_of(&people)?;
    println!(
        "hris-sync bench: {users} users, {:.1} MB {} body, {backend:?}",
        push.body.len() as f64 / 1e6,
        if csv { "CSV" } else { "JSON" }
    );

    let first = timed_sync(&client, &base, &token, &push)?;
    report("first full sync", users, &first);
    let again = timed_sync(&client, &base, &token, &push)?;
    report("unchanged re-push, right after", users, &again);
    // The same push once the server has settled (the first sync's WAL checkpoint and
    // statistics, and the memory it hands back, done), as a daily push finds it.
    std::thread::sleep(SETTLE);
    let settled = timed_sync(&client, &base, &token, &push)?;
    report("unchanged re-push, settled", users, &settled);
    println!(
        "server peak memory (VmHWM) through the first sync and the re-push: {:.0} MB",
        memory_kb(child.id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0
    );
    if csv {
        let run_id = first.run["id"].as_str().unwrap_or_default();
        let at = Instant::now();
        let response = client
            .get(format!("{base}/v1/syncs/{run_id}/log.csv"))
            .bearer_auth(&token)
            .send()?;
        anyhow::ensure!(
            response.status().is_success(),
            "log.csv: {}",
            response.status()
        );
        let log = response.bytes()?;
        println!(
            "  log.csv of the first sync: {:.2} s ({:.1} MB, {} lines)",
            at.elapsed().as_secs_f64(),
            log.len() as f64 / 1e6,
            log.iter().filter(|&&b| b == b'\n').count()
        );
    }
    // One person in a hundred (1,000 of 100,000) changed phone number and team.
    let step = (users / 1_000).max(1);
    for (i, person) in people.iter_mut().enumerate().filter(|(i, _)| i % step == 0) {
        person["phone"] = json!(format!("+44 7{i:09}"));
        person["teams"] = json!([format!("Team {}", (i + 1) % 60)]);
    }
    let changed = push_of(&people)?;
    let third = timed_sync(&client, &base, &token, &changed)?;
    report("re-push with changes", users, &third);

    let run_id = first.run["id"].as_str().unwrap_or_default();
    for (what, query) in [
        ("report, first page of 1000", "limit=1000".to_owned()),
        (
            "report, filtered by action",
            "action=USER_CREATED&limit=100".to_owned(),
        ),
        (
            "report, a filter matching nothing (reads the whole run)",
            "action=MANAGER_ASSIGNED&limit=100".to_owned(),
        ),
        ("report, name search", "q=zoe&limit=100".to_owned()),
    ] {
        let at = Instant::now();
        let response = client
            .get(format!("{base}/v1/syncs/{run_id}/events?{query}"))
            .bearer_auth(&token)
            .send()?;
        anyhow::ensure!(
            response.status().is_success(),
            "events: {}",
            response.status()
        );
        let page: Value = response.json()?;
        println!(
            "  {what}: {:.1} ms ({} items)",
            at.elapsed().as_secs_f64() * 1e3,
            page["items"].as_array().map_or(0, Vec::len)
        );
    }
    let deep = deep_page(&client, &base, &token, run_id, 200)?;
    println!(
        "  report, page 200 through cursors: {:.1} ms",
        deep.as_secs_f64() * 1e3
    );

    for (what, path) in [
        (
            "export report.csv",
            format!("/v1/syncs/{run_id}/report.csv"),
        ),
        ("export log.json", format!("/v1/syncs/{run_id}/log.json")),
        ("export sync-log.csv", "/v1/sync-log.csv".to_owned()),
        ("export sync-log.xlsx", "/v1/sync-log.xlsx".to_owned()),
    ] {
        let figures = timed_download(&client, &base, &token, &path, child.id())?;
        println!(
            "  {what}: first byte {:.1} ms, total {:.2} s, {:.1} MB, server RSS +{:.1} MB while streaming",
            figures.first_byte.as_secs_f64() * 1e3,
            figures.total.as_secs_f64(),
            figures.bytes as f64 / 1e6,
            figures.rss_growth_kb as f64 / 1024.0,
        );
    }
    reads_during_exports(&client, &base, &token, run_id)?;

    http_against_a_bare_handler(&base, &token, run_id)?;

    let peak = memory_kb(child.id(), "VmHWM:").unwrap_or(0);
    println!("server peak memory (VmHWM): {:.0} MB", peak as f64 / 1024.0);
    child.kill()?;
    child.wait()?;

    // The store's own limit, measured now on the same rows: raw SQLite (rusqlite).
    let raw = baseline::measure_store(dir.path(), &company(users))?;
    println!(
        "baseline, raw SQLite on the same rows: insert {users} users {:.2} s + {users} events {:.2} s; read {users} users {:.2} s",
        raw.insert_users.as_secs_f64(),
        raw.insert_events.as_secs_f64(),
        raw.read_users.as_secs_f64()
    );
    println!(
        "  first full sync / raw inserts: {:.2}x; unchanged re-push / raw read: {:.2}x settled, {:.2}x right after the first sync",
        first.seconds / raw.insert_total().as_secs_f64(),
        settled.seconds / raw.read_users.as_secs_f64(),
        again.seconds / raw.read_users.as_secs_f64()
    );
    Ok(())
}

/// `GET /v1/syncs/{id}` at 64 connections and an events page at 16, under `wrk`, next to a bare
/// actix-web handler measured the same way in the same run. `wrk` shares the two cores with
/// the server, and the machine's speed drifts within a run: the bare handler and the run's
/// read are measured in turns, [`ROUNDS`] times, and the median of the rounds' ratios is the
/// figure (each round printed too).
fn http_against_a_bare_handler(base: &str, token: &str, run_id: &str) -> anyhow::Result<()> {
    const ROUNDS: usize = 3;
    const SECONDS: u32 = 3;
    let hello = baseline::start_hello_server()?;
    std::thread::sleep(Duration::from_millis(300));
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let Some(bare) = baseline::wrk(&format!("http://127.0.0.1:{hello}/"), 64, SECONDS, None)
        else {
            println!("  (wrk is not installed: apt-get install wrk for the HTTP figures)");
            return Ok(());
        };
        let Some(run) = baseline::wrk(
            &format!("{base}/v1/syncs/{run_id}"),
            64,
            SECONDS,
            Some(token),
        ) else {
            continue;
        };
        let ratio = 100.0 * run.requests_per_second / bare.requests_per_second;
        println!(
            "  round {round}: bare actix-web handler at 64 connections {:.0} requests/s; GET /v1/syncs/{{id}} {:.0} requests/s ({ratio:.1} %), p99 {:.1} ms",
            bare.requests_per_second, run.requests_per_second, run.p99_ms
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        println!(
            "  GET /v1/syncs/{{id}} at 64 connections: {median:.1} % of the bare handler (median of {} rounds)",
            ratios.len()
        );
    }
    let events = baseline::wrk(
        &format!("{base}/v1/syncs/{run_id}/events?limit=100"),
        16,
        5,
        Some(token),
    );
    if let Some(events) = events {
        println!(
            "  events page (limit 100) at 16 connections: p50 {:.1} ms, p99 {:.1} ms, {:.0} requests/s",
            events.p50_ms, events.p99_ms, events.requests_per_second
        );
    }
    Ok(())
}

/// What a sync sends.
/// The server under test: this program re-executed with `--serve`, so that its memory is its
/// own.
struct Server {
    child: std::process::Child,
    base: String,
    token: String,
    client: reqwest::blocking::Client,
}

impl Server {
    fn start(database_url: &str) -> anyhow::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--serve", database_url])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
        let started: Value = serde_json::from_str(&line)?;
        let token = started["token"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "the database is not empty (no organization was created): give an empty one"
        );
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{}", started["port"]),
            token,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(3600))
                .build()?,
        })
    }
}

/// `--users 10000,100000,1000000`: a first full sync of each size, each on a fresh server and
/// database; prints the time per user of each next to that of the first size, and the
/// server's peak memory.
fn scale_curve(sizes: &[usize], csv: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &users in sizes {
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let people = company(users);
        let push = Push::full_sync(&people, csv)?;
        drop(people);
        let mut server = Server::start(&database_url)?;
        let megabytes = push.body.len() as f64 / 1e6;
        let first = timed_sync(&server.client, &server.base, &server.token, &push)?;
        report(&format!("first full sync of {users}"), users, &first);
        // The server logs the run's phases (`run finished`) just after the run is seen done.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let peak = memory_kb(server.child.id(), "VmHWM:").unwrap_or(0);
        server.child.kill()?;
        server.child.wait()?;
        rows.push((users, megabytes, first.seconds, peak));
    }
    let (base_users, _, base_seconds, _) = rows[0];
    let base_per_user = base_seconds / base_users as f64;
    // The scale target compares the time per user at 1,000,000 with that at 100,000: that
    // column too, when 100,000 is measured.
    let per_user_at_100k = rows
        .iter()
        .find(|(users, ..)| *users == 100_000)
        .map(|&(users, _, seconds, _)| seconds / users as f64);
    println!("scale curve ({}):", if csv { "CSV" } else { "JSON" });
    println!(
        "| users | body | first full sync | µs per user | per user vs {base_users} | per user vs 100000 | server peak memory |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (users, megabytes, seconds, peak) in rows {
        let per_user = seconds / users as f64;
        let vs_100k = per_user_at_100k.map_or("-".to_owned(), |at_100k| {
            format!("{:.2}×", per_user / at_100k)
        });
        println!(
            "| {users} | {megabytes:.0} MB | {seconds:.2} s | {:.1} | {:.2}× | {vs_100k} | {:.0} MB |",
            per_user * 1e6,
            per_user / base_per_user,
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

/// `--users N` or `--users N1,N2,…` (default 100,000).
fn sizes_flag(args: &[String]) -> anyhow::Result<Vec<usize>> {
    let Some(text) = text_flag(args, "--users") else {
        return Ok(vec![100_000]);
    };
    text.split(',')
        .map(|size| {
            size.trim()
                .replace('_', "")
                .parse()
                .map_err(|_| anyhow::anyhow!("--users takes sizes separated by commas: {text:?}"))
        })
        .collect()
}

struct Push {
    body: Vec<u8>,
    content_type: &'static str,
    path: &'static str,
}

impl Push {
    /// A full sync of `people`, as JSON or (`csv`) as a CSV upload.
    fn full_sync(people: &[Value], csv: bool) -> anyhow::Result<Push> {
        Ok(if csv {
            Push {
                body: company_csv(people)?,
                content_type: "text/csv",
                path: "/v1/syncs?source=bench&mode=full",
            }
        } else {
            Push {
                body: serde_json::to_vec(
                    &json!({"source": "bench", "mode": "full", "users": people}),
                )?,
                content_type: "application/json",
                path: "/v1/syncs",
            }
        })
    }
}

struct Timed {
    seconds: f64,
    run: Value,
}

/// How long the bench lets the server settle before the settled re-push.
const SETTLE: Duration = Duration::from_secs(3);

fn timed_sync(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    push: &Push,
) -> anyhow::Result<Timed> {
    // Copied before the clock starts: the client's own copy of 33 MB is not the server's time.
    let body = push.body.clone();
    let at = Instant::now();
    let response = client
        .post(format!("{base}{}", push.path))
        .bearer_auth(token)
        .header("Content-Type", push.content_type)
        .body(body)
        .send()?;
    anyhow::ensure!(
        response.status().as_u16() == 202,
        "push: {}",
        response.status()
    );
    let id = response.json::<Value>()?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    loop {
        let run: Value = client
            .get(format!("{base}/v1/syncs/{id}"))
            .bearer_auth(token)
            .send()?
            .json()?;
        if !matches!(run["status"].as_str(), Some("pending" | "running")) {
            return Ok(Timed {
                seconds: at.elapsed().as_secs_f64(),
                run,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn report(what: &str, users: usize, timed: &Timed) {
    let counts = &timed.run["counts"];
    println!(
        "{what}: {:.2} s, {:.0} records/s (status {}, created {}, updated {}, unchanged {}, skipped {}, issues {})",
        timed.seconds,
        users as f64 / timed.seconds,
        timed.run["status"],
        counts["created"],
        counts["updated"],
        counts["unchanged"],
        counts["skipped"],
        timed.run["issues"]["total"],
    );
}

fn deep_page(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    run: &str,
    pages: usize,
) -> anyhow::Result<Duration> {
    let mut cursor = String::new();
    let mut last = Duration::ZERO;
    for _ in 0..pages {
        let at = Instant::now();
        let page: Value = client
            .get(format!(
                "{base}/v1/syncs/{run}/events?limit=100&cursor={cursor}"
            ))
            .bearer_auth(token)
            .send()?
            .json()?;
        last = at.elapsed();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    Ok(last)
}

/// A realistic company: a CEO, managers with about eight reports each, 60 teams, varied names
/// with accents, all optional fields filled, shuffled so that people come before their managers.
fn company(size: usize) -> Vec<Value> {
    const FIRST: &[&str] = &[
        "Ada", "Zoë", "José", "Grace", "Linus", "Margaret", "Ken", "Chloé", "Bjørn", "Amélie",
        "Noah", "Mia",
    ];
    const LAST: &[&str] = &[
        "Lovelace", "Hopper", "Müller", "Torvalds", "Hamilton", "Thompson", "García", "Łukasz",
        "Dubois", "Okafor",
    ];
    let mut people: Vec<Value> = (0..size)
        .map(|i| {
            let manager = if i == 0 { Value::Null } else { json!(format!("E{:06}", (i - 1) / 8)) };
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            json!({
                "external_id": format!("E{i:06}"),
                "email": format!("{}.{}.{i}@example.com", first.to_lowercase(), last.to_lowercase()).replace(['ë', 'é'], "e").replace('ø', "o").replace('ü', "u").replace('ł', "l").replace('í', "i"),
                "first_name": first,
                "last_name": last,
                "username": format!("user{i}"),
                "start_date": format!("20{:02}-{:02}-{:02}", 10 + i % 15, 1 + i % 12, 1 + i % 28),
                "date_of_birth": format!("{:02}/{:02}/19{:02}", 1 + i % 12, 1 + i % 28, 60 + i % 40),
                "gender": if i % 2 == 0 { "F" } else { "M" },
                "phone": format!("+33 6{:08}", i),
                "manager_external_id": manager,
                "role": if i % 50 == 0 { "admin" } else { "member" },
                "approval_process": "out_of_policy",
                "teams": [format!("Team {}", i % 60)],
            })
        })
        .collect();
    // A deterministic shuffle (xorshift), so that runs are comparable.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..people.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        people.swap(i, (state % (i as u64 + 1)) as usize);
    }
    people
}

/// The company as a CSV file: the record fields as columns, teams joined with `|`.
fn company_csv(people: &[Value]) -> anyhow::Result<Vec<u8>> {
    const COLUMNS: &[&str] = &[
        "external_id",
        "email",
        "first_name",
        "last_name",
        "username",
        "start_date",
        "date_of_birth",
        "gender",
        "phone",
        "manager_external_id",
        "role",
        "approval_process",
        "teams",
    ];
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    for person in people {
        writer.write_record(COLUMNS.iter().map(|column| {
            match &person[*column] {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("|"),
                _ => String::new(),
            }
        }))?;
    }
    Ok(writer.into_inner()?)
}

/// Four report.csv downloads at once, while the run is read 50 times: the slowest read shows
/// whether exports hold up the rest of the API.
fn reads_during_exports(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    run_id: &str,
) -> anyhow::Result<()> {
    use std::io::Read;
    let downloads: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) = (
                client.clone(),
                format!("{base}/v1/syncs/{run_id}/report.csv"),
                token.to_owned(),
            );
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut body = Vec::new();
                client
                    .get(url)
                    .bearer_auth(token)
                    .send()?
                    .read_to_end(&mut body)?;
                Ok(body.len())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let at = Instant::now();
        let response = client
            .get(format!("{base}/v1/syncs/{run_id}"))
            .bearer_auth(token)
            .send()?;
        anyhow::ensure!(response.status().is_success(), "run: {}", response.status());
        slowest = slowest.max(at.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    for download in downloads {
        download
            .join()
            .map_err(|_| anyhow::anyhow!("download thread"))??;
    }
    println!(
        "  GET /v1/syncs/{{id}} during 4 concurrent report.csv downloads: slowest of 50 {:.1} ms",
        slowest.as_secs_f64() * 1e3
    );
    Ok(())
}

struct Download {
    first_byte: Duration,
    total: Duration,
    bytes: usize,
    /// Highest resident memory of the server while it streamed, above what it was before.
    rss_growth_kb: u64,
}

/// Downloads `path`, timing the first byte and the whole body, while a thread samples the
/// server's resident memory every 5 ms.
fn timed_download(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    path: &str,
    server: u32,
) -> anyhow::Result<Download> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let before = memory_kb(server, "VmRSS:").unwrap_or(0);
    let highest = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (highest, done) = (highest.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = memory_kb(server, "VmRSS:") {
                    highest.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let at = Instant::now();
    let mut response = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let mut buffer = vec![0u8; 256 * 1024];
    let mut bytes = response.read(&mut buffer)?;
    let first_byte = at.elapsed();
    loop {
        let read = response.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        bytes += read;
    }
    let total = at.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok(Download {
        first_byte,
        total,
        bytes,
        rss_growth_kb: highest.load(Ordering::Relaxed).saturating_sub(before),
    })
}

fn memory_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn text_flag(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

/// The child: a real server on port 0, announcing its port and admin token on stdout.
fn serve(database_url: &str) -> anyhow::Result<()> {
    hris_sync::telemetry::init();
    actix_web::rt::System::new().block_on(async move {
        let mut config = hris_sync::config::Config::new("127.0.0.1:0", database_url);
        config.announce_bootstrap_token = false;
        let app = hris_sync::startup::Application::build(config)?;
        let token = app
            .bootstrap
            .as_ref()
            .map(|b| b.admin_token.clone())
            .unwrap_or_default();
        println!("{}", json!({"port": app.port(), "token": token}));

        app.run_until_stopped().await
    })
}
