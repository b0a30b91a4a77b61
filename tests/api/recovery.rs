//! Ground rules under failure: a run applies all or nothing, and a push that got 202 survives a
//! stop or a crash of the service.

use diesel::prelude::*;
use hris_sync::store::schema::sync_runs;
use serde_json::{json, Value};

use crate::helpers::{person, spawn_app, spawn_app_with, start, TestApp};

/// Sets a run's status and attempts behind the service's back, as a crash would leave them:
/// a `running` run's lease has expired (its instance is gone).
fn force_run(database_url: &str, run_id: &str, status: &str, attempts: i32) {
    set_run(
        database_url,
        run_id,
        status,
        attempts,
        "2000-01-01T00:00:00.000000Z",
    );
}

/// Marks a run `running` under the live claim of another instance (its lease runs for an
/// hour): its organization's queue waits behind it.
fn hold_run(database_url: &str, run_id: &str) {
    let in_an_hour = hris_sync::store::timestamp(chrono::Utc::now() + chrono::Duration::hours(1));
    set_run(database_url, run_id, "running", 1, &in_an_hour);
}

fn set_run(database_url: &str, run_id: &str, status: &str, attempts: i32, lease_expires_at: &str) {
    let pool = hris_sync::store::connect(database_url, 1).expect("database");
    let mut conn = pool.get().expect("connection");
    let changed = diesel::update(sync_runs::table.find(run_id))
        .set((
            sync_runs::status.eq(status),
            sync_runs::attempts.eq(attempts),
            sync_runs::claimed_by.eq("another-instance"),
            sync_runs::lease_expires_at.eq(lease_expires_at),
        ))
        .execute(&mut *conn)
        .expect("run updated");
    assert_eq!(changed, 1);
}

fn people(range: std::ops::Range<usize>) -> Value {
    json!(range.map(|i| person(&format!("E{i}"))).collect::<Vec<_>>())
}

/// Restarts the service on the same database with the first server's credentials.
fn restart(first: &mut TestApp) -> TestApp {
    first.stop();
    let mut second = start(&first.database_url, |_| {});
    second.admin_token = first.admin_token.clone();
    second.organization_id = first.organization_id.clone();
    second
}

/// Pushes a run that stays `pending`: another run of the organization is marked `running`, so
/// the worker leaves the organization's queue alone. Returns the pushed run and the blocker.
fn push_while_busy(app: &TestApp, users: Value) -> (String, String) {
    let blocker = app.sync("incremental", json!([person("BLOCKER")]));
    let blocker = blocker["id"].as_str().unwrap().to_owned();
    hold_run(&app.database_url, &blocker);
    let run = app.push("incremental", users);
    let id = run["id"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        app.get_json(&format!("/v1/syncs/{id}"))["status"],
        "pending"
    );
    (id, blocker)
}

#[test]
fn a_run_failing_midway_applies_nothing_and_says_why() {
    let app = spawn_app_with(|config| config.test_hooks.fail_apply_after_writes = Some(5));
    let run = app.sync("incremental", people(0..50));
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["finished_at"].is_string());
    let logs = run["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    let last = &logs[logs.len() - 1];
    assert_eq!(last["level"], "error");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("nothing of it was applied"),
        "{last}"
    );
    assert_eq!(run["counts"]["created"], 0);
    assert_eq!(app.users(""), Vec::<Value>::new());
    assert_eq!(
        app.events(run["id"].as_str().unwrap(), ""),
        Vec::<Value>::new()
    );
}

#[test]
fn a_run_failing_midway_leaves_the_directory_as_it_was() {
    let app = spawn_app_with(|config| config.test_hooks.fail_apply_after_writes = Some(5));
    let first = app.sync("incremental", json!([person("E0"), person("E1")]));
    assert_eq!(first["status"], "succeeded", "{first}");
    let before = app.users("");

    let mut records: Vec<Value> = (0..2)
        .map(|i| crate::helpers::with(person(&format!("E{i}")), json!({"last_name": "Changed"})))
        .collect();
    records.extend((2..50).map(|i| person(&format!("E{i}"))));
    let run = app.sync("full", json!(records));
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(app.users(""), before);

    let small = app.sync("incremental", json!([person("E9")]));
    assert_eq!(small["status"], "succeeded", "the service goes on: {small}");
}

#[test]
fn a_run_interrupted_by_a_crash_is_run_again_on_restart() {
    let mut first = spawn_app();
    let _database = first.keep_database();
    let (run_id, blocker) = push_while_busy(&first, people(0..3));
    first.stop();
    // The crash: the blocker had finished, the pushed run was being processed.
    force_run(&first.database_url, &blocker, "succeeded", 1);
    force_run(&first.database_url, &run_id, "running", 1);

    let second = restart(&mut first);
    let run = second.wait_for_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 3);
    let logs = run["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|line| line["message"].as_str().unwrap().contains("queued again")),
        "{logs:?}"
    );
    assert_eq!(
        second.users("").len(),
        4,
        "BLOCKER and the three of the run"
    );
}

#[test]
fn a_run_interrupted_a_second_time_is_failed_on_restart_and_applies_nothing() {
    let mut first = spawn_app();
    let _database = first.keep_database();
    let (run_id, blocker) = push_while_busy(&first, people(0..3));
    first.stop();
    force_run(&first.database_url, &blocker, "succeeded", 1);
    force_run(&first.database_url, &run_id, "running", 2);

    let second = restart(&mut first);
    let run = second.wait_for_run(&run_id);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["finished_at"].is_string());
    let logs = run["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|line| line["level"] == "error"
            && line["message"]
                .as_str()
                .unwrap()
                .contains("interrupted 2 times")),
        "{logs:?}"
    );
    assert_eq!(second.users("").len(), 1, "only BLOCKER");
    assert_eq!(second.events(&run_id, ""), Vec::<Value>::new());
}

#[test]
fn a_push_still_queued_at_a_stop_is_processed_after_the_restart() {
    let mut first = spawn_app();
    let _database = first.keep_database();
    let (run_id, blocker) = push_while_busy(&first, people(0..2));
    first.stop();
    force_run(&first.database_url, &blocker, "succeeded", 1);

    let second = restart(&mut first);
    let run = second.wait_for_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 2);
    assert_eq!(run["logs"], json!([]), "it was never interrupted");
}

#[test]
fn runs_and_the_directory_survive_a_restart() {
    let mut first = spawn_app();
    let _database = first.keep_database();
    let run = first.sync("incremental", people(0..3));
    let second = restart(&mut first);
    assert_eq!(
        second.get_json(&format!("/v1/syncs/{}", run["id"].as_str().unwrap()))["status"],
        "succeeded"
    );
    assert_eq!(second.users("").len(), 3);
    let next = second.sync("incremental", people(0..4));
    assert_eq!(next["counts"]["created"], 1);
    assert_eq!(next["counts"]["unchanged"], 3);
}

#[test]
fn a_server_killed_while_processing_a_run_finishes_it_after_a_restart() {
    let database = crate::helpers::TestDatabase::new();
    let url = database.url().to_owned();
    let server = crate::helpers::BinaryServer::start(&url);
    let token = server
        .token
        .clone()
        .expect("a first start prints the admin token");
    let client = reqwest::blocking::Client::new();
    let users: Vec<Value> = (0..20_000)
        .map(|i| {
            let manager = if i == 0 {
                Value::Null
            } else {
                json!(format!("E{}", (i - 1) / 8))
            };
            json!({"external_id": format!("E{i}"), "email": format!("e{i}@example.com"),
                   "first_name": "F", "last_name": format!("L{i}"), "start_date": "2024-01-01",
                   "manager_external_id": manager, "teams": [format!("T{}", i % 20)]})
        })
        .collect();
    let pushed: Value = client
        .post(format!("{}/v1/syncs", server.base))
        .bearer_auth(&token)
        .json(&json!({"mode": "full", "users": users}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let run_id = pushed["id"].as_str().unwrap().to_owned();
    let status = |base: &str| -> Value {
        client
            .get(format!("{base}/v1/syncs/{run_id}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    // Kill the process the moment the run is being processed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let run = status(&server.base);
        if run["status"] == "running" {
            break;
        }
        assert_eq!(
            run["status"], "pending",
            "the run ended before it could be killed: {run}"
        );
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    server.kill();

    let restarted = crate::helpers::BinaryServer::start(&url);
    assert!(restarted.token.is_none());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let run = loop {
        let run = status(&restarted.base);
        if !matches!(run["status"].as_str(), Some("pending" | "running")) {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["logs"].to_string().contains("queued again"), "{run}");
    assert_eq!(
        run["counts"]["created"], 20_000,
        "applied exactly once: {run}"
    );
    let created = client
        .get(format!(
            "{}/v1/syncs/{run_id}/events?action=USER_CREATED&limit=1000",
            restarted.base
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(created["items"].as_array().unwrap().len(), 1000);
    let users: Value = client
        .get(format!(
            "{}/v1/users?limit=1&state=active&q=e19999%40example.com",
            restarted.base
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_run_whose_instance_stopped_renewing_its_lease_is_taken_over_and_says_so() {
    let app = spawn_app();
    let (run_id, blocker) = push_while_busy(&app, people(0..3));
    // Another instance claimed the run, then vanished: its lease ran out long ago. The
    // blocker ends meanwhile, so nothing else holds the organization's queue.
    force_run(&app.database_url, &run_id, "running", 1);
    force_run(&app.database_url, &blocker, "succeeded", 1);

    let run = app.wait_for_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 3, "applied once: {run}");
    let logs = run["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], "warning");
    let message = logs[0]["message"].as_str().unwrap();
    assert!(message.contains("another-instance"), "{message}");
    assert!(message.contains("took it over"), "{message}");
}

#[test]
fn a_run_held_under_a_live_lease_is_left_to_its_instance() {
    let app = spawn_app();
    let (run_id, blocker) = push_while_busy(&app, people(0..2));
    // The blocker is another instance's run, still under its lease: several polls later it
    // is still that instance's, and the organization's queue still waits behind it.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let held = app.get_json(&format!("/v1/syncs/{blocker}"));
    assert_eq!(held["status"], "running", "{held}");
    assert_eq!(held["logs"], json!([]));
    assert_eq!(
        app.get_json(&format!("/v1/syncs/{run_id}"))["status"],
        "pending"
    );
}
