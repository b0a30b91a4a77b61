//! Approval-flow rules over the push and the directory: managers must exist and be able to
//! approve, blocked managers visibly block their reports, and manager chains never loop.

use serde_json::{json, Value};

use crate::helpers::{person, spawn_app, with, TestApp};

fn managed_by(id: &str, manager: &str) -> Value {
    with(person(id), json!({"manager_external_id": manager}))
}

fn issues(app: &TestApp, run: &Value) -> Vec<Value> {
    app.events(run["id"].as_str().unwrap(), "kind=issue")
}

/// The issues of one record, by external id.
fn issues_of<'a>(issues: &'a [Value], external_id: &str) -> Vec<&'a Value> {
    issues
        .iter()
        .filter(|i| i["external_id"] == external_id)
        .collect()
}

fn only_issue<'a>(issues: &'a [Value], external_id: &str) -> &'a Value {
    let found = issues_of(issues, external_id);
    assert_eq!(found.len(), 1, "{external_id}: {found:?}");
    found[0]
}

fn message(issue: &Value) -> &str {
    issue["message"].as_str().unwrap()
}

fn user<'a>(users: &'a [Value], external_id: &str) -> Option<&'a Value> {
    users.iter().find(|u| u["external_id"] == external_id)
}

#[test]
fn a_manager_in_neither_the_push_nor_the_directory_skips_the_record() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([managed_by("E1", "E404"), person("E2")]),
    );
    let issues = issues(&app, &run);
    let issue = only_issue(&issues, "E1");
    assert_eq!(issue["code"], "MANAGER_DOES_NOT_EXIST");
    assert_eq!(issue["field"], "manager_external_id");
    assert_eq!(issue["severity"], "error");
    assert!(message(issue).contains("\"E404\""), "{issue}");
    assert_eq!(issues.len(), 1);
    let users = app.users("");
    assert!(user(&users, "E1").is_none());
    assert!(user(&users, "E2").is_some());
}

#[test]
fn a_manager_already_in_the_directory_is_accepted_in_an_incremental_push() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    let run = app.sync("incremental", json!([managed_by("E2", "E1")]));
    assert_eq!(run["status"], "succeeded", "{run}");
    let users = app.users("");
    let boss = user(&users, "E1").unwrap();
    let report = user(&users, "E2").unwrap();
    assert_eq!(report["manager_id"], boss["id"]);
    assert_eq!(report["manager_external_id"], "E1");
}

#[test]
fn a_skipped_manager_skips_three_levels_of_reports_each_pointing_at_the_row_above() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("CEO"), json!({"email": "not-an-email"})),
            managed_by("VP", "CEO"),
            managed_by("LEAD", "VP"),
            managed_by("DEV", "LEAD"),
            person("OTHER"),
        ]),
    );
    let issues = issues(&app, &run);
    assert_eq!(only_issue(&issues, "CEO")["code"], "EMAIL_INVALID");
    for (external_id, manager, manager_row, manager_code) in [
        ("VP", "CEO", 1, "EMAIL_INVALID"),
        ("LEAD", "VP", 2, "MANAGER_DOES_NOT_EXIST"),
        ("DEV", "LEAD", 3, "MANAGER_DOES_NOT_EXIST"),
    ] {
        let issue = only_issue(&issues, external_id);
        assert_eq!(issue["code"], "MANAGER_DOES_NOT_EXIST", "{issue}");
        let text = message(issue);
        assert!(text.contains(&format!("\"{manager}\"")), "{text}");
        assert!(text.contains(&format!("row {manager_row}")), "{text}");
        assert!(text.contains(manager_code), "{text}");
    }
    assert_eq!(run["counts"]["skipped"], 4);
    assert_eq!(run["counts"]["created"], 1);
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "OTHER");
}

#[test]
fn the_cascade_does_not_depend_on_the_order_of_the_rows() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            managed_by("DEV", "LEAD"),
            managed_by("LEAD", "VP"),
            with(managed_by("VP", "CEO"), json!({"phone": "0612345678"})),
            person("CEO"),
        ]),
    );
    let issues = issues(&app, &run);
    assert_eq!(
        only_issue(&issues, "VP")["code"],
        "PHONE_IS_MISSING_OR_INVALID"
    );
    let lead = only_issue(&issues, "LEAD");
    assert_eq!(lead["code"], "MANAGER_DOES_NOT_EXIST");
    assert!(
        message(lead).contains("row 3") && message(lead).contains("PHONE_IS_MISSING_OR_INVALID")
    );
    let dev = only_issue(&issues, "DEV");
    assert!(message(dev).contains("row 2") && message(dev).contains("MANAGER_DOES_NOT_EXIST"));
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "CEO");
}

#[test]
fn a_record_listed_before_its_manager_is_created_with_the_manager_set() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([managed_by("E3", "E2"), managed_by("E2", "E1"), person("E1")]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["created"], 3);
    let users = app.users("");
    let e1 = user(&users, "E1").unwrap();
    let e2 = user(&users, "E2").unwrap();
    let e3 = user(&users, "E3").unwrap();
    assert_eq!(e1["manager_id"], Value::Null);
    assert_eq!(e2["manager_id"], e1["id"]);
    assert_eq!(e3["manager_id"], e2["id"]);
    assert_eq!(e3["manager_external_id"], "E2");
}

#[test]
fn a_guest_cannot_be_a_manager_whether_in_the_push_or_in_the_directory() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("G1"), json!({"role": "guest"})),
            managed_by("E1", "G1")
        ]),
    );
    let found = issues(&app, &run);
    let issue = only_issue(&found, "E1");
    assert_eq!(issue["code"], "GUEST_USERS_CANNOT_BE_APPROVERS");
    assert_eq!(issue["field"], "manager_external_id");
    assert!(message(issue).contains("\"G1\""));
    assert!(
        issues_of(&found, "G1").is_empty(),
        "the guest itself is fine"
    );
    let users = app.users("");
    assert_eq!(user(&users, "G1").unwrap()["role"], "guest");
    assert!(user(&users, "E1").is_none());

    let run = app.sync("incremental", json!([managed_by("E2", "G1")]));
    let found = issues(&app, &run);
    assert_eq!(
        only_issue(&found, "E2")["code"],
        "GUEST_USERS_CANNOT_BE_APPROVERS"
    );
    assert!(user(&app.users(""), "E2").is_none());
}

#[test]
fn a_guest_whose_trips_are_not_all_approved_is_skipped() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(
                person("G1"),
                json!({"role": "guest", "approval_process": "none"})
            ),
            with(
                person("G2"),
                json!({"role": "guest", "approval_process": "out_of_policy"})
            ),
            with(
                person("G3"),
                json!({"role": "guest", "approval_process": "all_trips"})
            ),
            with(
                person("M1"),
                json!({"role": "member", "approval_process": "none"})
            ),
        ]),
    );
    let found = issues(&app, &run);
    for (external_id, process) in [("G1", "none"), ("G2", "out_of_policy")] {
        let issue = only_issue(&found, external_id);
        assert_eq!(
            issue["code"],
            "GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS"
        );
        assert_eq!(issue["field"], "approval_process");
        assert!(message(issue).contains(process), "{issue}");
    }
    assert_eq!(found.len(), 2);
    let mut created: Vec<String> = app
        .users("")
        .iter()
        .map(|u| u["external_id"].as_str().unwrap().to_owned())
        .collect();
    created.sort();
    assert_eq!(created, ["G3", "M1"]);
}

#[test]
fn a_guest_of_the_directory_pushed_with_a_weaker_approval_process_is_skipped() {
    let app = spawn_app();
    app.sync(
        "incremental",
        json!([with(person("G1"), json!({"role": "guest"}))]),
    );
    let run = app.sync(
        "incremental",
        json!([with(
            person("G1"),
            json!({"approval_process": "out_of_policy"})
        )]),
    );
    let found = issues(&app, &run);
    assert_eq!(
        only_issue(&found, "G1")["code"],
        "GUEST_MEMBERS_REQUIRE_APPROVAL_FOR_ALL_TRIPS"
    );
    assert_eq!(app.users("")[0]["approval_process"], "all_trips");
}

#[test]
fn a_guest_without_an_approval_process_gets_all_trips_and_a_member_out_of_policy() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([with(person("G1"), json!({"role": "guest"})), person("M1")]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let users = app.users("");
    assert_eq!(user(&users, "G1").unwrap()["approval_process"], "all_trips");
    assert_eq!(
        user(&users, "M1").unwrap()["approval_process"],
        "out_of_policy"
    );
    let created = app.events(run["id"].as_str().unwrap(), "action=USER_CREATED&q=G1");
    let changes = created[0]["changes"].as_array().unwrap();
    assert!(
        changes.contains(&json!({"field": "approval_process", "old": null, "new": "all_trips"}))
    );
    assert!(changes.contains(&json!({"field": "role", "old": null, "new": "guest"})));
}

#[test]
fn a_member_who_becomes_a_guest_gets_all_trips() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1")]));
    assert_eq!(app.users("")[0]["approval_process"], "out_of_policy");
    let run = app.sync(
        "incremental",
        json!([with(person("E1"), json!({"role": "guest"}))]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(app.users("")[0]["approval_process"], "all_trips");
}

#[test]
fn a_record_naming_itself_as_manager_gets_one_issue_and_is_skipped() {
    let app = spawn_app();
    let run = app.sync("incremental", json!([managed_by("E1", "E1"), person("E2")]));
    let found = issues(&app, &run);
    let issue = only_issue(&found, "E1");
    assert_eq!(issue["code"], "USER_CANNOT_BE_OWN_MANAGER");
    assert_eq!(issue["field"], "manager_external_id");
    assert_eq!(found.len(), 1);
    assert!(user(&app.users(""), "E1").is_none());
}

#[test]
fn a_manager_loop_skips_everyone_on_it_and_names_the_loop() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            managed_by("A", "B"),
            managed_by("B", "C"),
            managed_by("C", "A"),
            managed_by("D", "A"),
            person("E"),
        ]),
    );
    let found = issues(&app, &run);
    for member in ["A", "B", "C"] {
        let issue = only_issue(&found, member);
        assert_eq!(issue["code"], "MANAGER_CYCLE", "{issue}");
        assert_eq!(message(issue), "The manager chain loops: A → B → C → A.");
    }
    let outside = only_issue(&found, "D");
    assert_eq!(outside["code"], "MANAGER_DOES_NOT_EXIST");
    assert!(message(outside).contains("row 1") && message(outside).contains("MANAGER_CYCLE"));
    let users = app.users("");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "E");
}

#[test]
fn a_loop_closed_through_the_directory_is_found_in_an_incremental_push() {
    let app = spawn_app();
    app.sync("incremental", json!([person("B"), managed_by("A", "B")]));
    let run = app.sync("incremental", json!([managed_by("B", "A")]));
    let found = issues(&app, &run);
    let issue = only_issue(&found, "B");
    assert_eq!(issue["code"], "MANAGER_CYCLE");
    assert!(message(issue).contains("B → A → B"), "{issue}");
    assert_eq!(found.len(), 1);
    let users = app.users("");
    assert_eq!(
        user(&users, "B").unwrap()["manager_id"],
        Value::Null,
        "B is unchanged"
    );
    assert_eq!(user(&users, "A").unwrap()["manager_external_id"], "B");
}

#[test]
fn a_loop_in_the_directory_can_be_broken_by_moving_both_people_at_once() {
    let app = spawn_app();
    app.sync("incremental", json!([person("B"), managed_by("A", "B")]));
    let run = app.sync(
        "incremental",
        json!([
            managed_by("B", "A"),
            with(person("A"), json!({"manager_external_id": null}))
        ]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let users = app.users("");
    assert_eq!(user(&users, "B").unwrap()["manager_external_id"], "A");
    assert_eq!(user(&users, "A").unwrap()["manager_id"], Value::Null);
}

#[test]
fn numeric_external_ids_link_a_person_to_their_manager() {
    let app = spawn_app();
    let run = app.sync(
        "incremental",
        json!([
            with(person("x"), json!({"external_id": 1001, "email": "boss@example.com"})),
            with(person("y"), json!({"external_id": 1002, "email": "dev@example.com", "manager_external_id": 1001})),
        ]),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let users = app.users("");
    let dev = user(&users, "1002").unwrap();
    assert_eq!(dev["manager_external_id"], "1001");
    assert_eq!(dev["manager_id"], user(&users, "1001").unwrap()["id"]);
}

#[test]
fn a_manager_cannot_become_a_guest_while_people_of_the_directory_report_to_them() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E1"), managed_by("E2", "E1")]));
    let run = app.sync(
        "incremental",
        json!([with(person("E1"), json!({"role": "guest"}))]),
    );
    let found = issues(&app, &run);
    assert!(
        found
            .iter()
            .any(|i| i["code"] == "GUEST_USERS_CANNOT_BE_APPROVERS"),
        "no issue: {found:?}"
    );
    let users = app.users("");
    let manager = user(&users, "E1").unwrap();
    let report = user(&users, "E2").unwrap();
    let guest_approves = manager["role"] == "guest" && report["manager_id"] == manager["id"];
    assert!(!guest_approves, "E2's trips are approved by a guest");
}

#[test]
fn a_leaving_record_gets_the_new_manager_it_names_whatever_the_row_order() {
    let app = spawn_app();
    app.sync("incremental", json!([person("E0"), managed_by("E1", "E0")]));
    let leaving = with(
        person("E1"),
        json!({"employment_status": "terminated", "manager_external_id": "E5"}),
    );
    let run = app.sync("incremental", json!([leaving, person("E5")]));
    assert_eq!(run["status"], "succeeded", "{run}");
    let users = app.users("");
    assert_eq!(user(&users, "E1").unwrap()["state"], "archived");
    let assigned = app.events(run["id"].as_str().unwrap(), "action=MANAGER_ASSIGNED");
    assert_eq!(
        assigned[0]["changes"],
        json!([{"field": "manager_external_id", "old": "E0", "new": "E5"}]),
        "listed after E5, the same record gets E5"
    );
    assert_eq!(user(&users, "E1").unwrap()["manager_external_id"], "E5");
}
