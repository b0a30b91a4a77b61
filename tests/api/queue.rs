//! The run queue: organizations take turns, and a run that a transient fault stopped is queued
//! again with a backoff until it succeeds or has used its attempts.

use std::time::Duration;

use hris_sync::config::TransientFaults;
use serde_json::{json, Value};

use crate::helpers::{person, spawn_app_with, with, TestApp};

fn people(prefix: &str, count: usize) -> Value {
    json!((0..count)
        .map(|i| person(&format!("{prefix}{i}")))
        .collect::<Vec<_>>())
}

fn wait_as(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let run: Value = app
            .get_as(token, &format!("/v1/syncs/{id}"))
            .json()
            .unwrap();
        if !matches!(run["status"].as_str(), Some("pending" | "running")) {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn logs(run: &Value) -> Vec<String> {
    run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Stores a push as the push handler does, without a server running to process it.
fn queue_push(database_url: &str, organization_id: &str, users: Value) -> String {
    let body = json!({"source": "test", "mode": "incremental", "users": users});
    let record_count = body["users"].as_array().unwrap().len();
    let body = body.to_string();
    let pool = hris_sync::store::connect(database_url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let new = hris_sync::store::runs::NewRun {
        organization_id,
        mode: hris_sync::domain::SyncMode::Incremental,
        source: "test",
        dry_run: false,
        content_type: "application/json",
        body: &hris_sync::store::payloads::WholeBody(body.as_bytes()),
        record_count,
        retry_of: None,
        idempotency: None,
    };
    match hris_sync::store::runs::insert(&mut conn, &new).unwrap() {
        hris_sync::store::runs::Stored::Created(run) => run.id,
        _ => unreachable!("no idempotency key"),
    }
}

/// A fresh database with two organizations, "first" and "second", and no service running yet.
fn two_organizations() -> (
    crate::helpers::TestDatabase,
    hris_sync::store::organizations::CreatedOrganization,
    hris_sync::store::organizations::CreatedOrganization,
) {
    let database = crate::helpers::TestDatabase::new();
    let pool = hris_sync::store::connect(database.url(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let first = hris_sync::store::organizations::create(&mut conn, "first").unwrap();
    let second = hris_sync::store::organizations::create(&mut conn, "second").unwrap();
    (database, first, second)
}

#[test]
fn a_small_push_of_another_organization_starts_before_the_first_ones_queue_drains() {
    // Four big pushes of one organization, then one small push of another, all queued
    // before the service starts, so that the worker sees the whole queue at once.
    let (database, first, second) = two_organizations();
    let big: Vec<String> = (0..4)
        .map(|i| {
            queue_push(
                database.url(),
                &first.organization.id,
                people(&format!("A{i}-"), 500),
            )
        })
        .collect();
    let small = queue_push(
        database.url(),
        &second.organization.id,
        json!([person("B1")]),
    );

    let app = crate::helpers::start(database.url(), |_| {});
    let small = wait_as(&app, &second.admin_token, &small);
    assert_eq!(small["status"], "succeeded", "{small}");
    let big: Vec<Value> = big
        .iter()
        .map(|id| wait_as(&app, &first.admin_token, id))
        .collect();
    for run in &big {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["counts"]["created"], 500);
    }
    // First come, first served would have run all four big pushes first; taking turns, the
    // second organization's push comes right after the first big one.
    let small_started = small["started_at"].as_str().unwrap();
    assert!(
        big[0]["finished_at"].as_str().unwrap() <= small_started
            && small_started < big[1]["started_at"].as_str().unwrap(),
        "the small push started at {small_started}: {big:?}"
    );
    // The first organization's runs still went one at a time, in arrival order.
    for pair in big.windows(2) {
        assert!(pair[0]["finished_at"].as_str() <= pair[1]["started_at"].as_str());
    }
}

#[test]
fn a_run_stopped_by_a_transient_fault_is_queued_again_and_then_succeeds() {
    let faults = TransientFaults::new(2);
    let app = spawn_app_with(|config| {
        config.test_hooks.transient_faults = faults.clone();
        config.retry_backoff = Duration::from_millis(50);
        config.max_run_attempts = 5;
    });
    let run = app.sync("incremental", people("E", 3));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 3, "applied once: {run}");
    assert_eq!(faults.left(), 0);
    let logs = logs(&run);
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs[0].contains("the database was busy"), "{logs:?}");
    assert!(logs[0].contains("attempt 2 of 5"), "{logs:?}");
    assert!(logs[1].contains("attempt 3 of 5"), "{logs:?}");
    assert!(run["logs"][0]["level"] == "warning", "{run}");
    assert_eq!(app.users("").len(), 3);
}

#[test]
fn a_run_set_back_by_a_transient_fault_keeps_its_place_in_its_organizations_queue() {
    let faults = TransientFaults::new(1);
    let app = spawn_app_with(|config| {
        config.test_hooks.transient_faults = faults.clone();
        config.retry_backoff = Duration::from_millis(400);
    });
    let first = app.push(
        "incremental",
        json!([with(person("E1"), json!({"last_name": "First"}))]),
    );
    let second = app.push(
        "incremental",
        json!([with(person("E1"), json!({"last_name": "Second"}))]),
    );
    let first = app.wait_for_run(first["id"].as_str().unwrap());
    let second = app.wait_for_run(second["id"].as_str().unwrap());
    assert_eq!(first["counts"]["created"], 1, "{first}");
    assert_eq!(logs(&first).len(), 1, "one transient fault: {first}");
    assert_eq!(second["counts"]["updated"], 1, "{second}");
    assert!(
        first["finished_at"].as_str() <= second["started_at"].as_str(),
        "the second push waited for the first one's retry: {first} {second}"
    );
    assert_eq!(app.users("")[0]["last_name"], "Second");
}

#[test]
fn a_run_that_meets_transient_faults_at_every_attempt_fails_after_the_last_one() {
    let app = spawn_app_with(|config| {
        config.test_hooks.transient_faults = TransientFaults::new(3);
        config.retry_backoff = Duration::from_millis(20);
        config.max_run_attempts = 3;
    });
    let run = app.sync("incremental", people("E", 2));
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["finished_at"].is_string());
    let logs = logs(&run);
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(logs[2].contains("tried 3 times"), "{logs:?}");
    assert!(logs[2].contains("Nothing of it was applied"), "{logs:?}");
    assert_eq!(run["logs"][2]["level"], "error");
    assert_eq!(app.users(""), Vec::<Value>::new());

    let next = app.sync("incremental", people("E", 2));
    assert_eq!(next["status"], "succeeded", "the faults are over: {next}");
}

#[test]
fn a_pending_run_shows_how_many_runs_of_its_organization_go_before_it() {
    // Three pushes of one organization and one of another, queued before the service starts.
    let (database, first, second) = two_organizations();
    let queued: Vec<String> = (0..3)
        .map(|i| {
            queue_push(
                database.url(),
                &first.organization.id,
                json!([person(&format!("A{i}"))]),
            )
        })
        .collect();
    let other = queue_push(
        database.url(),
        &second.organization.id,
        json!([person("B1")]),
    );

    // A worker holding its first run's transaction: the queue stays as it is meanwhile.
    let app = crate::helpers::start(database.url(), |config| {
        config.test_hooks.hold_run_transaction = Some(Duration::from_secs(3));
    });
    let position = |token: &str, id: &str| -> Value {
        app.get_as(token, &format!("/v1/syncs/{id}"))
            .json::<Value>()
            .unwrap()["queue_position"]
            .clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while position(&first.admin_token, &queued[0]) != Value::Null {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first run is being applied: one run goes before the second, two before the third.
    assert_eq!(position(&first.admin_token, &queued[1]), json!(1));
    assert_eq!(position(&first.admin_token, &queued[2]), json!(2));
    // The other organization's queue is its own.
    let other_position = position(&second.admin_token, &other);
    assert!(
        other_position == json!(0) || other_position == Value::Null,
        "{other_position}"
    );
    let listed = app.get_as(&first.admin_token, "/v1/syncs?status=pending");
    let listed: Value = listed.json().unwrap();
    let positions: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| &run["queue_position"])
        .collect();
    assert_eq!(positions, [&json!(2), &json!(1)], "{listed}");

    for id in &queued {
        let run = wait_as(&app, &first.admin_token, id);
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["queue_position"], Value::Null);
    }
}
