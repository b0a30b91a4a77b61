//! The catalogue of issue codes: complete entries, one per code, and every code a run reports
//! is in it.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, person, spawn_app, with, TestApp};

fn catalogue(app: &TestApp) -> Vec<Value> {
    let page = app.get_json("/v1/error-codes?limit=1000");
    assert_eq!(page["next_cursor"], Value::Null);
    page["items"].as_array().unwrap().clone()
}

#[test]
fn every_entry_has_a_code_category_severity_title_message_and_remediation_steps() {
    let app = spawn_app();
    let entries = catalogue(&app);
    assert!(entries.len() >= 30, "{} entries", entries.len());
    let categories = ["user_flow", "approval_flow", "file", "directory"];
    let severities = ["error", "warning", "info"];
    for entry in &entries {
        let code = entry["code"].as_str().expect("code");
        assert!(
            code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{code}"
        );
        assert!(
            categories.contains(&entry["category"].as_str().unwrap_or("")),
            "{entry}"
        );
        assert!(
            severities.contains(&entry["severity"].as_str().unwrap_or("")),
            "{entry}"
        );
        assert!(entry["needs_action"].is_boolean(), "{entry}");
        assert!(
            !entry["title"].as_str().unwrap_or("").trim().is_empty(),
            "{entry}"
        );
        assert!(
            !entry["message"].as_str().unwrap_or("").trim().is_empty(),
            "{entry}"
        );
        let steps = entry["remediation"].as_array().expect("remediation list");
        assert!(!steps.is_empty(), "{entry}");
        assert!(
            steps
                .iter()
                .all(|s| !s.as_str().unwrap_or("").trim().is_empty()),
            "{entry}"
        );
    }
    let codes: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), entries.len(), "each code once");
}

#[test]
fn the_catalogue_has_the_codes_of_the_design_with_their_severity() {
    let app = spawn_app();
    let entries = catalogue(&app);
    let severity: BTreeMap<&str, &str> = entries
        .iter()
        .map(|e| (e["code"].as_str().unwrap(), e["severity"].as_str().unwrap()))
        .collect();
    for (code, expected) in [
        ("MISSING_EXTERNAL_ID", "error"),
        ("DUPLICATE_EXTERNAL_ID", "error"),
        ("MISSING_EMAIL", "error"),
        ("EMAIL_INVALID", "error"),
        ("USER_DUPLICATE_EMAIL", "error"),
        ("USERNAME_INVALID", "error"),
        ("MISSING_FIRST_NAME", "error"),
        ("MISSING_LAST_NAME", "error"),
        ("MISSING_START_DATE", "error"),
        ("DATE_OF_BIRTH_IS_MISSING_OR_INVALID", "error"),
        ("SEX_IS_MISSING_OR_INVALID", "error"),
        ("PHONE_IS_MISSING_OR_INVALID", "error"),
        ("MANAGER_DOES_NOT_EXIST", "error"),
        ("GUEST_USERS_CANNOT_BE_APPROVERS", "error"),
        ("GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS", "error"),
        ("USER_EXISTS_IN_INVITED_STATE", "error"),
        ("USER_HAS_UPCOMING_TRIPS", "warning"),
        ("EMAIL_USED_BY_ARCHIVED_USER", "error"),
        ("CUSTOM_FIELD_TYPE_MISMATCH", "warning"),
        ("FIELD_TYPE_INVALID", "error"),
        ("FIELD_TOO_LONG", "error"),
        ("FIELD_INVALID_CHARACTERS", "error"),
        ("RESCINDED_HIRE_NOT_CREATED", "info"),
    ] {
        assert_eq!(severity.get(code).copied(), Some(expected), "{code}");
    }
    let upcoming = entries
        .iter()
        .find(|e| e["code"] == "USER_HAS_UPCOMING_TRIPS")
        .unwrap();
    assert_eq!(
        upcoming["needs_action"], false,
        "a later run retries by itself"
    );
    assert_eq!(upcoming["category"], "directory");
    let manager = entries
        .iter()
        .find(|e| e["code"] == "MANAGER_DOES_NOT_EXIST")
        .unwrap();
    assert_eq!(manager["category"], "approval_flow");
    assert_eq!(manager["needs_action"], true);
}

#[test]
fn one_code_is_read_by_its_name_and_matches_the_list() {
    let app = spawn_app();
    let entries = catalogue(&app);
    for entry in &entries {
        let code = entry["code"].as_str().unwrap();
        assert_eq!(&app.get_json(&format!("/v1/error-codes/{code}")), entry);
    }
}

#[test]
fn an_unknown_code_is_404() {
    let app = spawn_app();
    let problem = assert_problem(app.get("/v1/error-codes/NOT_A_CODE"), 404);
    assert!(problem["detail"].as_str().unwrap().contains("NOT_A_CODE"));
    assert_problem(app.get("/v1/error-codes/manager_does_not_exist"), 404);
}

#[test]
fn the_catalogue_pages_with_cursors_in_a_stable_order() {
    let app = spawn_app();
    let all: Vec<Value> = catalogue(&app);
    let mut paged = Vec::new();
    let mut path = "/v1/error-codes?limit=7".to_owned();
    loop {
        let page = app.get_json(&path);
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/error-codes?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert_problem(app.get("/v1/error-codes?cursor=bm9wZQ"), 400);
}

#[test]
fn the_catalogue_is_readable_with_a_read_token_and_not_without_one() {
    let app = spawn_app();
    let token = app.token("sync:read");
    assert_eq!(
        app.get_as(&token, "/v1/error-codes/EMAIL_INVALID")
            .status()
            .as_u16(),
        200
    );
    let anonymous = app
        .client
        .request(Method::GET, app.url("/v1/error-codes"))
        .send()
        .unwrap();
    assert_problem(anonymous, 401);
}

#[test]
fn every_code_a_run_reports_is_in_the_catalogue_with_the_same_severity() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([person("ARCH"), person("TRIP"), person("STAYS")]),
    );
    app.sync(
        "incremental",
        json!([with(
            person("ARCH"),
            json!({"employment_status": "terminated"})
        )]),
    );
    let trip = app.users("q=trip")[0]["id"].as_str().unwrap().to_owned();
    app.set_upcoming_trips(&trip, 1);
    let invited = app.post_json(
        "/v1/users/invitations",
        &json!({"email": "invited@example.com", "first_name": "I", "last_name": "N"}),
    );
    assert_eq!(invited.status().as_u16(), 201);

    let records = json!([
        {"email": "a1@example.com", "first_name": "A", "last_name": "B", "start_date": "2024-01-15"},
        with(person("D1"), json!({"email": "d1@example.com"})),
        with(person("D1"), json!({"email": "d2@example.com"})),
        with(person("M1"), json!({"email": null})),
        with(person("M2"), json!({"email": "bad"})),
        with(person("M3"), json!({"email": "dup@example.com"})),
        with(person("M4"), json!({"email": "DUP@example.com"})),
        with(person("M5"), json!({"username": "a b"})),
        with(person("M6"), json!({"first_name": ""})),
        with(person("M7"), json!({"last_name": null})),
        with(person("M8"), json!({"start_date": null})),
        with(person("M9"), json!({"start_date": "15/01/2024"})),
        with(person("M10"), json!({"end_date": "2024-02-30"})),
        with(person("M11"), json!({"end_date": "2023-01-01"})),
        with(person("M12"), json!({"date_of_birth": "1990-01-01"})),
        with(person("M13"), json!({"gender": "X"})),
        with(person("M14"), json!({"phone": "0612345678"})),
        with(person("M15"), json!({"role": "owner"})),
        with(person("M16"), json!({"approval_process": "some"})),
        with(person("M17"), json!({"employment_status": "retired"})),
        with(person("M18"), json!({"phone": 33612345678u64})),
        with(person("M19"), json!({"last_name": "x".repeat(300)})),
        with(person("M20"), json!({"first_name": "a\tb"})),
        with(person("M21"), json!({"teams": ["Ok", ""]})),
        with(person("M22"), json!({"custom_fields": {"shoe_size": 42}})),
        with(person("M23"), json!({"employment_status": "rescinded"})),
        with(person("M24"), json!({"employment_status": "terminated"})),
        with(person("M25"), json!({"manager_external_id": "NOBODY"})),
        with(person("M26"), json!({"manager_external_id": "G1"})),
        with(person("G1"), json!({"role": "guest"})),
        with(person("G2"), json!({"role": "guest", "approval_process": "none"})),
        with(person("M27"), json!({"manager_external_id": "M27"})),
        with(person("C1"), json!({"manager_external_id": "C2"})),
        with(person("C2"), json!({"manager_external_id": "C1"})),
        with(person("M28"), json!({"email": "invited@example.com"})),
        with(person("M29"), json!({"email": "arch@example.com"})),
        with(person("M30"), json!({"manager_external_id": "ARCH"})),
        person("STAYS"),
    ]);
    let run = app.sync("full", records);
    let events = app.events(run["id"].as_str().unwrap(), "kind=issue");
    let seen: BTreeMap<String, String> = events
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_owned(),
                e["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        seen.len() >= 30,
        "the push exercises many codes: {:?}",
        seen.keys()
    );

    let catalogued: BTreeMap<String, String> = catalogue(&app)
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_owned(),
                e["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (code, severity) in &seen {
        assert_eq!(
            catalogued.get(code),
            Some(severity),
            "{code} is not catalogued as {severity}"
        );
    }
    for event in &events {
        let code = event["code"].as_str().unwrap();
        assert_eq!(event["help"], format!("/v1/error-codes/{code}"));
        assert_eq!(
            app.get(event["help"].as_str().unwrap()).status().as_u16(),
            200,
            "{code}"
        );
    }
}
