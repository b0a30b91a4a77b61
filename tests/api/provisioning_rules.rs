//! The provisioning rules of the settings, seen through runs: seat limit, custom field types,
//! group rules, sync perimeter, archive grace period; and a record's every problem at once.

use chrono::{Days, Utc};
use serde_json::{json, Value};

use hris_sync::domain::ProvisioningSettings;

use crate::helpers::{person, spawn_app, with, TestApp};

/// Sets the organization's provisioning settings (the document of `GET|PUT
/// /v1/settings/provisioning`) through the library.
fn set_settings(app: &TestApp, settings: Value) {
    let settings: ProvisioningSettings = serde_json::from_value(settings).expect("settings");
    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .expect("db")
        .get()
        .expect("conn");
    hris_sync::store::organizations::set_settings(&mut conn, &app.organization_id, &settings)
        .expect("settings stored");
}

fn events_of(app: &TestApp, run: &Value, query: &str) -> Vec<Value> {
    app.events(run["id"].as_str().unwrap(), query)
}

fn codes_of(app: &TestApp, run: &Value, external_id: &str) -> Vec<String> {
    events_of(app, run, "kind=issue")
        .iter()
        .filter(|e| e["external_id"] == external_id)
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

fn user(app: &TestApp, external_id: &str) -> Option<Value> {
    app.users("")
        .into_iter()
        .find(|u| u["external_id"] == external_id)
}

#[test]
fn creations_past_the_seat_limit_are_skipped_managers_first() {
    let app = spawn_app();
    app.sync("incremental", json!([person("A")]));
    set_settings(&app, json!({"seat_limit": 3}));

    let run = app.sync(
        "incremental",
        json!([
            with(person("R1"), json!({"manager_external_id": "M"})),
            with(person("R2"), json!({"manager_external_id": "M"})),
            person("M"),
        ]),
    );

    assert_eq!(run["status"], "succeeded_with_errors", "{run}");
    assert_eq!(run["counts"]["created"], 2);
    assert_eq!(run["counts"]["skipped"], 1);
    assert!(user(&app, "M").is_some(), "the manager got a seat first");
    assert!(user(&app, "R1").is_some());
    assert!(user(&app, "R2").is_none());
    assert_eq!(codes_of(&app, &run, "R2"), ["WORKSPACE_LIMIT_REACHED"]);
    let issue = &events_of(&app, &run, "code=WORKSPACE_LIMIT_REACHED")[0];
    assert_eq!(issue["severity"], "error");
    assert_eq!(issue["row"], 2);
}

#[test]
fn reactivating_an_archived_user_needs_a_seat() {
    let app = spawn_app();
    app.sync("incremental", json!([person("A"), person("B")]));
    app.sync(
        "incremental",
        json!([with(
            person("B"),
            json!({"employment_status": "terminated"})
        )]),
    );
    set_settings(&app, json!({"seat_limit": 1}));

    let run = app.sync("incremental", json!([person("B")]));

    assert_eq!(codes_of(&app, &run, "B"), ["WORKSPACE_LIMIT_REACHED"]);
    assert_eq!(user(&app, "B").unwrap()["state"], "archived");
    set_settings(&app, json!({"seat_limit": 2}));
    let run = app.sync("incremental", json!([person("B")]));
    assert_eq!(run["counts"]["reactivated"], 1, "{run}");
}

#[test]
fn a_custom_field_of_the_wrong_type_is_a_warning_and_a_missing_required_one_skips_the_record() {
    let app = spawn_app();
    set_settings(
        &app,
        json!({"custom_fields": [
            {"key": "cost_center", "type": "string", "required": true},
            {"key": "level", "type": "number"},
            {"key": "remote", "type": "boolean"},
            {"key": "badge_until", "type": "date"}
        ]}),
    );

    let run = app.sync(
        "incremental",
        json!([
            with(person("E1"), json!({"custom_fields": {
                "cost_center": "CC-1", "level": "high", "remote": true, "badge_until": "31/12/2027"
            }})),
            with(person("E2"), json!({"custom_fields": {"level": 2}})),
        ]),
    );

    assert_eq!(
        codes_of(&app, &run, "E1"),
        ["CUSTOM_FIELD_TYPE_MISMATCH", "CUSTOM_FIELD_TYPE_MISMATCH"]
    );
    let stored = user(&app, "E1").expect("E1 synced despite the warnings");
    assert_eq!(
        stored["custom_fields"],
        json!({"cost_center": "CC-1", "remote": true})
    );
    assert_eq!(codes_of(&app, &run, "E2"), ["CUSTOM_FIELD_REQUIRED"]);
    assert!(user(&app, "E2").is_none());
    assert_eq!(run["counts"]["warnings"], 1);
    assert_eq!(run["counts"]["skipped"], 1);
}

#[test]
fn every_matching_group_rule_assigns_its_group_and_a_user_matching_none_is_warned() {
    let app = spawn_app();
    set_settings(
        &app,
        json!({
            "custom_fields": [{"key": "region", "type": "string"}],
            "group_rules": [
                {"group": "Sales", "when": {"field": "teams", "equals": "sales"}},
                {"group": "Sales EMEA", "when": {"field": "custom.region", "in": ["EMEA", "Africa"]}},
                {"group": "Admins", "when": {"field": "role", "equals": "admin"}}
            ]
        }),
    );

    let run = app.sync(
        "incremental",
        json!([
            with(
                person("S1"),
                json!({"teams": ["Sales"], "custom_fields": {"region": "EMEA"}})
            ),
            with(person("O1"), json!({"teams": ["Ops"]})),
        ]),
    );

    assert_eq!(
        user(&app, "S1").unwrap()["groups"],
        json!(["Sales", "Sales EMEA"])
    );
    assert_eq!(user(&app, "O1").unwrap()["groups"], json!([]));
    let assigned = events_of(&app, &run, "action=GROUP_ASSIGNED");
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    assert_eq!(assigned[0]["external_id"], "S1");
    assert_eq!(
        assigned[0]["changes"],
        json!([{"field": "groups", "old": [], "new": ["Sales", "Sales EMEA"]}])
    );
    assert_eq!(codes_of(&app, &run, "O1"), ["NO_GROUP_MATCH"]);
    assert_eq!(codes_of(&app, &run, "S1"), Vec::<String>::new());
    assert_eq!(run["counts"]["warnings"], 1);

    // Moving teams moves groups; the same push again changes nothing but still warns.
    let run = app.sync(
        "incremental",
        json!([
            with(
                person("S1"),
                json!({"teams": ["Ops"], "custom_fields": {"region": "EMEA"}})
            ),
            with(person("O1"), json!({"teams": ["Ops"]})),
        ]),
    );
    let assigned = events_of(&app, &run, "action=GROUP_ASSIGNED");
    assert_eq!(
        assigned[0]["changes"],
        json!([{"field": "groups", "old": ["Sales", "Sales EMEA"], "new": ["Sales EMEA"]}])
    );
    assert_eq!(run["counts"]["unchanged"], 1, "{run}");
    assert_eq!(codes_of(&app, &run, "O1"), ["NO_GROUP_MATCH"]);
}

#[test]
fn new_group_rules_apply_to_users_whose_records_did_not_change() {
    let app = spawn_app();
    let records = json!([with(person("S1"), json!({"teams": ["Sales"]}))]);
    app.sync("incremental", records.clone());
    set_settings(
        &app,
        json!({"group_rules": [{"group": "Sales", "when": {"field": "teams", "equals": "Sales"}}]}),
    );

    let run = app.sync("incremental", records);

    assert_eq!(user(&app, "S1").unwrap()["groups"], json!(["Sales"]));
    assert_eq!(events_of(&app, &run, "action=GROUP_ASSIGNED").len(), 1);
}

#[test]
fn a_new_person_outside_the_perimeter_is_ignored_and_a_user_who_leaves_it_is_archived() {
    let app = spawn_app();
    app.sync("incremental", json!([person("IN"), person("MOVER")]));
    set_settings(
        &app,
        json!({"sync_perimeter": {"email_domains": ["example.com"]}}),
    );

    let run = app.sync(
        "incremental",
        json!([
            with(person("OUT"), json!({"email": "out@contractor.io"})),
            with(person("MOVER"), json!({"email": "mover@contractor.io"})),
            person("NEW"),
        ]),
    );

    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(user(&app, "OUT").is_none());
    assert_eq!(codes_of(&app, &run, "OUT"), ["OUTSIDE_SYNC_PERIMETER"]);
    let issue = &events_of(&app, &run, "code=OUTSIDE_SYNC_PERIMETER")[0];
    assert_eq!(issue["severity"], "info");
    assert_eq!(run["counts"]["ignored"], 1);
    assert_eq!(run["counts"]["created"], 1);
    assert_eq!(run["counts"]["archived"], 1, "{run}");
    assert_eq!(user(&app, "MOVER").unwrap()["state"], "archived");
    assert_eq!(codes_of(&app, &run, "MOVER"), ["OUTSIDE_SYNC_PERIMETER"]);
    assert_eq!(user(&app, "IN").unwrap()["state"], "active");
}

#[test]
fn a_perimeter_condition_keeps_out_people_who_do_not_meet_it() {
    let app = spawn_app();
    set_settings(
        &app,
        json!({"sync_perimeter": {"email_domains": [], "when": {"field": "teams", "in": ["Sales", "Ops"]}}}),
    );

    let run = app.sync(
        "incremental",
        json!([
            with(person("M"), json!({"teams": ["Legal"]})),
            with(
                person("R"),
                json!({"teams": ["Ops"], "manager_external_id": "M"})
            ),
        ]),
    );

    assert!(user(&app, "M").is_none());
    assert_eq!(codes_of(&app, &run, "M"), ["OUTSIDE_SYNC_PERIMETER"]);
    // Nobody can be managed by a person the sync does not create.
    assert_eq!(codes_of(&app, &run, "R"), ["MANAGER_DOES_NOT_EXIST"]);
    let issue = &events_of(&app, &run, "code=MANAGER_DOES_NOT_EXIST")[0];
    assert!(
        issue["message"]
            .as_str()
            .unwrap()
            .contains("outside the sync perimeter"),
        "{issue}"
    );
}

#[test]
fn a_user_missing_from_a_full_sync_waits_for_the_grace_period_and_comes_back_silently() {
    let app = spawn_app();
    app.sync("full", json!([person("STAY"), person("GONE")]));
    set_settings(&app, json!({"archive_grace_days": 7}));

    let run = app.sync("full", json!([person("STAY")]));

    assert_eq!(run["counts"]["archived"], 0, "{run}");
    assert_eq!(run["counts"]["pending_archive"], 1, "{run}");
    let gone = user(&app, "GONE").unwrap();
    assert_eq!(gone["state"], "pending_archive");
    assert_eq!(gone["pending_archive_reason"], "missing_from_full_sync");
    assert!(gone["pending_archive_since"].is_string());
    let found = codes_of(&app, &run, "GONE");
    assert_eq!(found, ["ARCHIVE_GRACE_PERIOD_STARTED"]);
    let ends = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(7))
        .unwrap();
    let issue = &events_of(&app, &run, "code=ARCHIVE_GRACE_PERIOD_STARTED")[0];
    assert!(
        issue["message"]
            .as_str()
            .unwrap()
            .contains(&ends.to_string()),
        "{issue}"
    );

    // Still missing, but the grace period is not over: nothing happens.
    let run = app.sync("full", json!([person("STAY")]));
    assert_eq!(run["counts"]["archived"], 0);
    assert_eq!(user(&app, "GONE").unwrap()["state"], "pending_archive");

    let run = app.sync("full", json!([person("STAY"), person("GONE")]));
    let restored = events_of(&app, &run, "action=USER_RESTORED");
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(
        restored[0]["changes"],
        json!([{"field": "state", "old": "pending_archive", "new": "active"}])
    );
    assert!(codes_of(&app, &run, "GONE").is_empty());
    let back = user(&app, "GONE").unwrap();
    assert_eq!(back["state"], "active");
    assert_eq!(back["pending_archive_reason"], Value::Null);
}

#[test]
fn a_user_still_missing_when_the_grace_period_ends_is_archived_by_a_run_or_the_daily_pass() {
    let app = spawn_app();
    app.sync(
        "full",
        json!([person("STAY"), person("GONE1"), person("GONE2")]),
    );
    set_settings(&app, json!({"archive_grace_days": 3}));
    app.sync("full", json!([person("STAY")]));

    let mut conn = hris_sync::store::connect(&app.database_url, 1)
        .unwrap()
        .get()
        .unwrap();
    let today = Utc::now().date_naive();
    let early = hris_sync::sync::grace::archive_expired(&mut conn, &app.organization_id, today)
        .expect("daily pass");
    assert_eq!(early.archived, 0);
    let later = today.checked_add_days(Days::new(3)).unwrap();
    let done = hris_sync::sync::grace::archive_expired_everywhere(&mut conn, later)
        .expect("daily pass over every organization");
    assert_eq!(done.archived, 2);
    assert_eq!(user(&app, "GONE1").unwrap()["state"], "archived");
    let again = hris_sync::sync::grace::archive_expired(&mut conn, &app.organization_id, later)
        .expect("daily pass");
    assert_eq!(again.archived, 0, "nothing is archived twice");

    // A run checks the grace period too: with no grace left, the next run archives.
    app.sync(
        "full",
        json!([person("STAY"), person("GONE1"), person("GONE2")]),
    );
    app.sync("full", json!([person("STAY")]));
    set_settings(&app, json!({"archive_grace_days": 0}));
    let run = app.sync("incremental", json!([person("STAY")]));
    assert_eq!(run["counts"]["archived"], 2, "{run}");
    assert_eq!(user(&app, "GONE2").unwrap()["state"], "archived");
}

#[test]
fn an_unreadable_record_is_reported_with_its_identity_and_does_not_offboard_its_person() {
    let app = spawn_app();
    app.sync("full", json!([person("E1"), person("E2")]));
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!(
        r#"{{"source": "test", "mode": "full", "users": [{}, {{"external_id": "E2", "email": "e2@example.com", "custom_fields": {deep}}}]}}"#,
        person("E1")
    );
    let response = app
        .request(reqwest::Method::POST, "/v1/syncs")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let run: Value = response.json().unwrap();
    let run = app.wait_for_run(run["id"].as_str().unwrap());

    let issue = &events_of(&app, &run, "kind=issue")[0];
    assert_eq!(issue["code"], "FIELD_TYPE_INVALID");
    assert_eq!(issue["external_id"], "E2");
    assert_eq!(issue["email"], "e2@example.com");
    assert_eq!(issue["row"], 2);
    assert_eq!(run["counts"]["archived"], 0, "{run}");
    assert_eq!(user(&app, "E2").unwrap()["state"], "active");
}

#[test]
fn a_record_gets_every_problem_of_its_manager_and_is_told_only_true_things() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("M"), json!({"role": "guest", "phone": "12"})),
            with(person("R1"), json!({"manager_external_id": "M"})),
            with(
                person("R2"),
                json!({"manager_external_id": "M", "email": "nope"})
            ),
        ]),
    );

    assert_eq!(
        codes_of(&app, &run, "R1"),
        ["MANAGER_DOES_NOT_EXIST", "GUEST_USERS_CANNOT_BE_APPROVERS"]
    );
    assert_eq!(
        codes_of(&app, &run, "R2"),
        [
            "EMAIL_INVALID",
            "MANAGER_DOES_NOT_EXIST",
            "GUEST_USERS_CANNOT_BE_APPROVERS"
        ]
    );
    let messages: Vec<String> = events_of(&app, &run, "code=MANAGER_DOES_NOT_EXIST")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        messages.iter().all(|m| !m.contains("will follow")),
        "{messages:?}"
    );
    assert!(messages[1].contains("2 other error(s)"), "{messages:?}");
}

#[test]
fn a_dry_run_plans_every_rule_and_changes_nothing() {
    let app = spawn_app();
    app.sync("full", json!([person("A"), person("B")]));
    set_settings(&app, json!({"seat_limit": 2, "archive_grace_days": 5}));

    let run = app.push_body(&json!({
        "source": "test", "mode": "full", "dry_run": true,
        "users": [person("A"), person("N")]
    }));
    let run = app.wait_for_run(run["id"].as_str().unwrap());

    assert_eq!(run["dry_run"], true);
    assert_eq!(run["counts"]["pending_archive"], 1, "{run}");
    assert_eq!(run["counts"]["skipped"], 1, "{run}");
    assert_eq!(codes_of(&app, &run, "N"), ["WORKSPACE_LIMIT_REACHED"]);
    assert_eq!(codes_of(&app, &run, "B"), ["ARCHIVE_GRACE_PERIOD_STARTED"]);
    assert_eq!(user(&app, "B").unwrap()["state"], "active");
    assert!(user(&app, "N").is_none());
}
