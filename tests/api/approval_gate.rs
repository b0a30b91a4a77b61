//! The approval gate: runs that wait for an administrator, approve, reject, expiry, the
//! queue behind a waiting run, dry runs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, spawn_app_with, TestApp};

fn set_approval(app: &TestApp, approval: Value) {
    let response = app
        .client
        .put(app.url("/v1/settings/provisioning"))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "approval": approval }))
        .send()
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200, "settings saved");
}

/// People E1…En.
fn people(range: std::ops::RangeInclusive<u32>) -> Value {
    Value::Array(range.map(|n| person(&format!("E{n}"))).collect())
}

fn active_external_ids(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = app
        .users("state=active")
        .iter()
        .map(|u| u["external_id"].as_str().unwrap_or("").to_owned())
        .collect();
    ids.sort();
    ids
}

fn limits(run: &Value) -> Vec<&str> {
    run["approval_reasons"]
        .as_array()
        .expect("approval_reasons")
        .iter()
        .map(|r| r["limit"].as_str().expect("limit"))
        .collect()
}

fn approve(app: &TestApp, id: &str, body: Option<Value>) -> reqwest::blocking::Response {
    decide_as(app, &app.admin_token, id, "approve", body)
}

fn decide_as(
    app: &TestApp,
    token: &str,
    id: &str,
    verb: &str,
    body: Option<Value>,
) -> reqwest::blocking::Response {
    let request = app
        .client
        .post(app.url(&format!("/v1/syncs/{id}/{verb}")))
        .bearer_auth(token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .expect("sent")
}

/// (action, external id) of a run's updates, in report order.
fn updates(app: &TestApp, run_id: &str) -> Vec<(String, String)> {
    app.events(run_id, "kind=update")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["external_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// An organization with ten active users, E1…E10, and then the given approval settings.
fn ten_users_then(approval: Value) -> TestApp {
    let app = spawn_app();
    let run = app.sync("full", people(1..=10));
    assert_eq!(run["status"], "succeeded", "{run}");
    set_approval(&app, approval);
    app
}

#[test]
fn a_run_over_the_archive_percentage_waits_with_its_reason_and_applies_nothing() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_percent": 10}));
    // 3 of 10 missing from a full sync: 30 % would be archived.
    let run = app.sync("full", people(1..=7));
    assert_eq!(run["status"], "awaiting_approval", "{run}");
    assert_eq!(run["planned"], true);
    assert!(run["finished_at"].is_null());
    assert!(run["awaiting_since"].is_string());
    let since =
        chrono::DateTime::parse_from_rfc3339(run["awaiting_since"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(run["approval_expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - since, chrono::Duration::hours(72));
    assert_eq!(run["counts"]["archived"], 3);
    let reasons = run["approval_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{run}");
    assert_eq!(reasons[0]["limit"], "max_archive_percent");
    assert_eq!(reasons[0]["planned"], 30);
    assert_eq!(reasons[0]["limit_value"], 10);
    assert!(reasons[0]["message"].as_str().unwrap().contains("3 of 10"));
    // Nothing applied, but the plan is readable.
    assert_eq!(active_external_ids(&app).len(), 10);
    let planned = updates(&app, run["id"].as_str().unwrap());
    assert_eq!(
        planned.iter().filter(|(a, _)| a == "USER_ARCHIVED").count(),
        3,
        "{planned:?}"
    );
}

#[test]
fn archive_counts_at_and_under_the_limit_apply_and_over_it_wait() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_count": 2}));
    let under = app.sync("full", people(1..=9));
    assert_eq!(
        under["status"], "succeeded",
        "archive 1 of limit 2: {under}"
    );
    let at = app.sync("full", people(1..=7));
    assert_eq!(at["status"], "succeeded", "archive 2 of limit 2: {at}");
    assert_eq!(at["approval_reasons"], json!([]));
    let over = app.sync("full", people(1..=4));
    assert_eq!(over["status"], "awaiting_approval", "archive 3 of limit 2");
    assert_eq!(limits(&over), ["max_archive_count"]);
    assert_eq!(over["approval_reasons"][0]["planned"], 3);
    assert_eq!(active_external_ids(&app).len(), 7);
}

#[test]
fn archive_percentages_at_the_limit_apply_and_just_over_it_wait() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_percent": 20}));
    // Exactly 20 % (2 of 10): at the limit.
    let at = app.sync("full", people(1..=8));
    assert_eq!(at["status"], "succeeded", "{at}");
    // 2 of 8 = 25 %: just over.
    let over = app.sync("full", people(1..=6));
    assert_eq!(over["status"], "awaiting_approval", "{over}");
    assert_eq!(over["approval_reasons"][0]["planned"], 25);
}

#[test]
fn creations_and_updates_over_their_limits_wait_and_at_them_apply() {
    let app = ten_users_then(json!({
        "mode": "threshold", "max_create_count": 2, "max_update_percent": 20
    }));
    let at = app.sync("incremental", people(11..=12));
    assert_eq!(at["status"], "succeeded", "2 creations of limit 2: {at}");
    let over = app.sync("incremental", people(13..=15));
    assert_eq!(
        over["status"], "awaiting_approval",
        "3 creations of limit 2"
    );
    assert_eq!(limits(&over), ["max_create_count"]);
    let rejected = decide_as(
        &app,
        &app.admin_token,
        over["id"].as_str().unwrap(),
        "reject",
        None,
    );
    assert_eq!(rejected.status().as_u16(), 200);

    // 12 active users: renaming 3 is 25 % > 20 %.
    let renamed: Vec<Value> = (1..=3)
        .map(|n| {
            let mut p = person(&format!("E{n}"));
            p["first_name"] = json!("Renamed");
            p
        })
        .collect();
    let over = app.sync("incremental", Value::Array(renamed));
    assert_eq!(over["status"], "awaiting_approval", "{over}");
    assert_eq!(limits(&over), ["max_update_percent"]);
    assert_eq!(over["approval_reasons"][0]["planned"], 25);
}

#[test]
fn approving_applies_exactly_the_planned_changes_and_records_the_decision() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_percent": 10}));
    let mut records = people(1..=7);
    records.as_array_mut().unwrap().push(person("E11"));
    let waiting = app.sync("full", records);
    let id = waiting["id"].as_str().unwrap();
    assert_eq!(waiting["status"], "awaiting_approval");
    let planned = updates(&app, id);

    let response = approve(
        &app,
        id,
        Some(json!({"reason": "Reorganisation, checked with HR"})),
    );
    assert_eq!(response.status().as_u16(), 200);
    let run: Value = response.json().unwrap();
    assert_eq!(run["status"], "approved", "{run}");
    assert_eq!(run["planned"], false);
    assert!(run["finished_at"].is_string());
    assert_eq!(run["decided_by"], "admin");
    assert_eq!(run["decision_reason"], "Reorganisation, checked with HR");
    assert!(run["decided_at"].is_string());
    assert_eq!(run["counts"]["archived"], 3);
    assert_eq!(run["counts"]["created"], 1);
    assert_eq!(run["approval_reasons"][0]["limit"], "max_archive_percent");

    assert_eq!(
        updates(&app, id),
        planned,
        "the applied report is the planned one"
    );
    let mut expected: Vec<String> = (1..=7).map(|n| format!("E{n}")).collect();
    expected.push("E11".into());
    expected.sort();
    assert_eq!(active_external_ids(&app), expected);
    assert_eq!(app.get_json(&format!("/v1/syncs/{id}")), run);
}

#[test]
fn approving_after_the_directory_changed_plans_the_run_again() {
    let app = spawn_app();
    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", json!([person("N1"), person("N2")]));
    let id = waiting["id"].as_str().unwrap();
    assert_eq!(waiting["status"], "awaiting_approval");
    assert_eq!(limits(&waiting), ["mode_always"]);
    assert_eq!(waiting["counts"]["created"], 2);

    // Meanwhile somebody invites N1 by hand.
    let invited = app.post_json(
        "/v1/users/invitations",
        &json!({"email": "n1@example.com", "first_name": "N", "last_name": "One"}),
    );
    assert_eq!(invited.status().as_u16(), 201);

    let run: Value = approve(&app, id, None).json().unwrap();
    assert_eq!(run["status"], "approved", "{run}");
    assert_eq!(run["decision_reason"], Value::Null);
    assert_eq!(run["counts"]["created"], 1, "{run}");
    assert_eq!(
        updates(&app, id),
        [("USER_CREATED".to_owned(), "N2".to_owned())]
    );
    let issues = app.events(id, "kind=issue");
    assert!(
        issues
            .iter()
            .any(|i| i["code"] == "USER_EXISTS_IN_INVITED_STATE"),
        "{issues:?}"
    );
}

#[test]
fn rejecting_applies_nothing_and_keeps_the_plan_readable() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_count": 0}));
    let waiting = app.sync("full", people(1..=5));
    let id = waiting["id"].as_str().unwrap();
    let response = decide_as(
        &app,
        &app.admin_token,
        id,
        "reject",
        Some(json!({"reason": "HR export was truncated"})),
    );
    assert_eq!(response.status().as_u16(), 200);
    let run: Value = response.json().unwrap();
    assert_eq!(run["status"], "rejected");
    assert_eq!(run["planned"], true);
    assert_eq!(run["decided_by"], "admin");
    assert_eq!(run["decision_reason"], "HR export was truncated");
    assert!(run["finished_at"].is_string());
    assert_eq!(active_external_ids(&app).len(), 10);
    assert_eq!(updates(&app, id).len(), 5);
}

#[test]
fn deciding_on_a_run_that_is_not_awaiting_approval_is_a_409_naming_its_status() {
    let app = spawn_app();
    let done = app.sync("incremental", json!([person("E1")]));
    let id = done["id"].as_str().unwrap();
    let problem = assert_problem(approve(&app, id, None), 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("succeeded"),
        "{problem}"
    );
    assert_problem(decide_as(&app, &app.admin_token, id, "reject", None), 409);

    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", json!([person("E2")]));
    let id = waiting["id"].as_str().unwrap();
    assert_eq!(approve(&app, id, None).status().as_u16(), 200);
    let again = assert_problem(approve(&app, id, None), 409);
    assert!(
        again["detail"].as_str().unwrap().contains("approved"),
        "{again}"
    );
    let reject = assert_problem(decide_as(&app, &app.admin_token, id, "reject", None), 409);
    assert!(reject["detail"].as_str().unwrap().contains("approved"));
}

#[test]
fn only_an_admin_of_the_organization_may_decide() {
    let app = spawn_app();
    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", json!([person("E1")]));
    let id = waiting["id"].as_str().unwrap();
    let writer = app.token("sync:write");
    let reader = app.token("sync:read");
    for verb in ["approve", "reject"] {
        assert_problem(decide_as(&app, &writer, id, verb, None), 403);
        assert_problem(decide_as(&app, &reader, id, verb, None), 403);
    }
    let (_, other_admin) = app.other_organization();
    assert_problem(decide_as(&app, &other_admin, id, "approve", None), 404);
    assert_problem(
        decide_as(
            &app,
            &app.admin_token,
            "0193a6d2-1c4e-7d2a-9f3b-5e6a7b8c9d0e",
            "approve",
            None,
        ),
        404,
    );
    let bad_body = decide_as(
        &app,
        &app.admin_token,
        id,
        "approve",
        Some(json!({"why": "x"})),
    );
    assert_problem(bad_body, 422);
    let long = decide_as(
        &app,
        &app.admin_token,
        id,
        "reject",
        Some(json!({"reason": "x".repeat(1001)})),
    );
    assert_eq!(assert_problem(long, 422)["errors"][0]["pointer"], "/reason");
    assert_eq!(
        app.get_json(&format!("/v1/syncs/{id}"))["status"],
        "awaiting_approval"
    );
}

#[test]
fn later_runs_of_the_organization_wait_behind_a_run_awaiting_approval() {
    let app = spawn_app();
    set_approval(&app, json!({"mode": "threshold", "max_create_count": 1}));
    let waiting = app.sync("incremental", json!([person("E1"), person("E2")]));
    assert_eq!(waiting["status"], "awaiting_approval");
    let second = app.push("incremental", json!([person("E3")]));
    let third = app.push("incremental", json!([person("E4")]));
    // Another organization's runs are not held up.
    let (other_org, other_admin) = app.other_organization();
    let other = app.post_json_as(
        &other_admin,
        "/v1/syncs",
        &json!({"source": "t", "mode": "incremental", "users": [person("X1")]}),
    );
    let other: Value = other.json().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = app.get_as(
            &other_admin,
            &format!("/v1/syncs/{}", other["id"].as_str().unwrap()),
        );
        let run: Value = run.json().unwrap();
        if run["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other organization's run waits: {run} ({other_org})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(600));
    for queued in [&second, &third] {
        let run = app.get_json(&format!("/v1/syncs/{}", queued["id"].as_str().unwrap()));
        assert_eq!(run["status"], "pending", "{run}");
    }

    let rejected = decide_as(
        &app,
        &app.admin_token,
        waiting["id"].as_str().unwrap(),
        "reject",
        None,
    );
    assert_eq!(rejected.status().as_u16(), 200);
    let second = app.wait_for_run(second["id"].as_str().unwrap());
    let third = app.wait_for_run(third["id"].as_str().unwrap());
    assert_eq!(second["status"], "succeeded");
    assert_eq!(third["status"], "succeeded");
    assert!(
        second["finished_at"].as_str() <= third["started_at"].as_str(),
        "in arrival order"
    );
    assert_eq!(active_external_ids(&app), ["E3", "E4"]);
}

#[test]
fn a_run_nobody_decides_on_in_time_expires_as_rejected_with_a_log_line() {
    let app = spawn_app();
    // 0.0005 hours: 1.8 seconds.
    set_approval(
        &app,
        json!({"mode": "always", "expires_after_hours": 0.0005}),
    );
    let waiting = app.sync("incremental", json!([person("E1")]));
    let id = waiting["id"].as_str().unwrap();
    assert_eq!(waiting["status"], "awaiting_approval");
    let queued = app.push("incremental", json!([person("E2")]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let run = app.get_json(&format!("/v1/syncs/{id}"));
        if run["status"] != "awaiting_approval" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run never expired");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "rejected");
    assert_eq!(run["decision_reason"], "expired");
    assert_eq!(run["decided_by"], Value::Null);
    assert!(run["finished_at"].is_string());
    let logs = run["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().unwrap().contains("expired")),
        "{logs:?}"
    );
    assert!(active_external_ids(&app).is_empty());
    // The queued run now goes through the gate itself (and waits, under `always`).
    let queued = app.wait_for_run(queued["id"].as_str().unwrap());
    assert_eq!(queued["status"], "awaiting_approval");
}

#[test]
fn a_run_that_expired_while_the_service_was_down_is_rejected_at_start() {
    let mut app = spawn_app();
    // 0.001 hours: 3.6 seconds.
    set_approval(
        &app,
        json!({"mode": "always", "expires_after_hours": 0.001}),
    );
    let waiting = app.sync("incremental", json!([person("E1")]));
    let id = waiting["id"].as_str().unwrap().to_owned();
    assert_eq!(waiting["status"], "awaiting_approval");
    let dir = app.keep_database();
    let url = app.database_url.clone();
    let token = app.admin_token.clone();
    app.stop();
    std::thread::sleep(Duration::from_millis(4000));
    let mut restarted = crate::helpers::start(&url, |_| {});
    restarted.admin_token = token;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = restarted.get_json(&format!("/v1/syncs/{id}"));
        if run["status"] == "rejected" {
            assert_eq!(run["decision_reason"], "expired");
            break;
        }
        assert!(Instant::now() < deadline, "{run}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(restarted);
    drop(dir);
}

#[test]
fn dry_runs_never_wait_but_say_that_a_real_run_would_have() {
    let app = ten_users_then(json!({"mode": "threshold", "max_archive_percent": 10}));
    let run = app.push_body(&json!({
        "source": "t", "mode": "full", "dry_run": true, "users": people(1..=5)
    }));
    let run = app.wait_for_run(run["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["planned"], true);
    assert_eq!(run["counts"]["archived"], 5);
    assert_eq!(limits(&run), ["max_archive_percent"]);
    assert_eq!(run["approval_reasons"][0]["planned"], 50);
    assert_eq!(active_external_ids(&app).len(), 10);

    let harmless = app.push_body(&json!({
        "source": "t", "mode": "incremental", "dry_run": true, "users": people(1..=1)
    }));
    let harmless = app.wait_for_run(harmless["id"].as_str().unwrap());
    assert_eq!(harmless["status"], "succeeded");
    assert_eq!(harmless["approval_reasons"], json!([]));
}

#[test]
fn an_approved_run_whose_application_fails_ends_failed_with_nothing_applied() {
    let app = spawn_app_with(|config| config.test_hooks.fail_apply_after_writes = Some(1));
    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", people(1..=3));
    assert_eq!(waiting["status"], "awaiting_approval", "{waiting}");
    let response = approve(&app, waiting["id"].as_str().unwrap(), None);
    assert_eq!(response.status().as_u16(), 200);
    let run: Value = response.json().unwrap();
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["planned"], true);
    assert!(run["finished_at"].is_string());
    let id = waiting["id"].as_str().unwrap();
    assert!(app.events(id, "").iter().all(|e| e["planned"] == true));
    assert!(active_external_ids(&app).is_empty());
    assert_problem(approve(&app, waiting["id"].as_str().unwrap(), None), 409);
}

#[test]
fn of_two_simultaneous_decisions_exactly_one_wins_and_the_other_is_a_409() {
    let app = spawn_app();
    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", people(1..=200));
    let id = waiting["id"].as_str().unwrap().to_owned();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let deciders: Vec<_> = ["approve", "approve", "reject"]
            .into_iter()
            .map(|verb| {
                let (app, id) = (&app, &id);
                scope.spawn(move || {
                    decide_as(app, &app.admin_token, id, verb, None)
                        .status()
                        .as_u16()
                })
            })
            .collect();
        deciders.into_iter().map(|d| d.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        2,
        "{statuses:?}"
    );
    let run = app.get_json(&format!("/v1/syncs/{id}"));
    let active = active_external_ids(&app).len();
    match run["status"].as_str().unwrap() {
        "approved" => assert_eq!(active, 200),
        "rejected" => assert_eq!(active, 0),
        other => panic!("{other}"),
    }
}

#[test]
fn a_waiting_run_cannot_be_retried_but_a_rejected_one_can_and_meets_the_gate_again() {
    let app = spawn_app();
    set_approval(&app, json!({"mode": "always"}));
    let waiting = app.sync("incremental", json!([person("E1")]));
    let id = waiting["id"].as_str().unwrap();
    let problem = assert_problem(
        app.post_json(&format!("/v1/syncs/{id}/retry"), &json!({})),
        409,
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("awaiting_approval"),
        "{problem}"
    );

    assert_eq!(
        decide_as(&app, &app.admin_token, id, "reject", None)
            .status()
            .as_u16(),
        200
    );
    let retried = app.post_json(&format!("/v1/syncs/{id}/retry"), &json!({}));
    assert_eq!(retried.status().as_u16(), 202);
    let retried: Value = retried.json().unwrap();
    assert_eq!(retried["retry_of"], id);
    let retried = app.wait_for_run(retried["id"].as_str().unwrap());
    assert_eq!(retried["status"], "awaiting_approval");
    assert_eq!(retried["decided_by"], Value::Null);
}
