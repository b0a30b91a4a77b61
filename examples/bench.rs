//! Measures a sync end to end against a real server on a temporary SQLite file, or on the
//! database `--database-url` names (it must be empty: a PostgreSQL one, for instance).
//!
//!     cargo run --release --example bench -- --users 100000
//!     scripts/with-postgres sh -c 'cargo run --release --example bench -- \
//!         --database-url "$HRIS_SYNC_TEST_POSTGRES_URL"'
//!
//! The server runs in a child process (this program re-executed with `--serve`), so that its
//! peak memory is its own. Prints: seconds from POST to finished for a first full sync,
//! seconds for re-pushing the same records (all unchanged), for a re-push where 1,000 people
//! changed, records/s, the server's peak
//! memory, and the latency of the report endpoint on the first run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve(&args[2]);
    }
    let users: usize = flag(&args, "--users").unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let database_url = text_flag(&args, "--database-url")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let backend = hris_sync::store::Backend::from_url(&database_url)?;

    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &database_url])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    let started: Value = serde_json::from_str(&line)?;
    let base = format!("http://127.0.0.1:{}", started["port"]);
    let token = started["token"].as_str().unwrap_or_default().to_owned();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;

    anyhow::ensure!(
        !token.is_empty(),
        "the database is not empty (no organization was created): give an empty one"
    );
    let mut people = company(users);
    let body = serde_json::to_vec(&json!({"source": "bench", "mode": "full", "users": people}))?;
    println!(
        "hris-sync bench: {users} users, {:.1} MB JSON body, {backend:?}",
        body.len() as f64 / 1e6
    );

    let first = timed_sync(&client, &base, &token, &body)?;
    report("first full sync", users, &first);
    let again = timed_sync(&client, &base, &token, &body)?;
    report("unchanged re-push", users, &again);
    // One person in a hundred (1,000 of 100,000) changed phone number and team.
    let step = (users / 1_000).max(1);
    for (i, person) in people.iter_mut().enumerate().filter(|(i, _)| i % step == 0) {
        person["phone"] = json!(format!("+44 7{i:09}"));
        person["teams"] = json!([format!("Team {}", (i + 1) % 60)]);
    }
    let changed = serde_json::to_vec(&json!({"source": "bench", "mode": "full", "users": people}))?;
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

    let peak = peak_memory_kb(child.id()).unwrap_or(0);
    println!("server peak memory (VmHWM): {:.0} MB", peak as f64 / 1024.0);
    child.kill()?;
    child.wait()?;
    Ok(())
}

struct Timed {
    seconds: f64,
    run: Value,
}

fn timed_sync(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    body: &[u8],
) -> anyhow::Result<Timed> {
    let at = Instant::now();
    let response = client
        .post(format!("{base}/v1/syncs"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
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

fn peak_memory_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn text_flag(args: &[String], name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.replace('_', "").parse().ok()
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
